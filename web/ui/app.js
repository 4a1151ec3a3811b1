/* The status page's script (web/README). */
