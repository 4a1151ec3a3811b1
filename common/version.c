#include "version.h"

#include "version_git.h"

const char *ss_version(void)
{
	/* The same figure as streamserver_build_info's version label, plus the
	 * commit, which tells two builds of one version apart. */
	return SS_VERSION_GIT[0] != '\0' ? STREAMSERVER_VERSION " (git " SS_VERSION_GIT ")"
					 : STREAMSERVER_VERSION;
}

const char *ss_version_git(void)
{
	return SS_VERSION_GIT;
}
