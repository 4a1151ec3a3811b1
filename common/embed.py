#!/usr/bin/env python3
"""Writes a C table of files to embed in a binary (see common/embed.h).

usage: embed.py OUT.c PREFIX FILE...
"""
import os
import sys

TYPES = {
    '.html': 'text/html; charset=utf-8',
    '.js': 'text/javascript; charset=utf-8',
    '.css': 'text/css; charset=utf-8',
    '.svg': 'image/svg+xml',
    '.png': 'image/png',
    '.ico': 'image/x-icon',
    '.yaml': 'application/yaml; charset=utf-8',
    '.json': 'application/json',
    '.txt': 'text/plain; charset=utf-8',
}


def main():
    out, prefix, files = sys.argv[1], sys.argv[2], sys.argv[3:]
    lines = ['/* Written by common/embed.py; do not edit. */', '#include "embed.h"', '']
    entries = []
    for i, path in enumerate(files):
        with open(path, 'rb') as f:
            data = f.read()
        name = os.path.basename(path)
        ctype = TYPES.get(os.path.splitext(name)[1], 'application/octet-stream')
        body = ','.join(str(b) for b in data)
        lines.append('static const unsigned char %s_d%d[] = {%s%s0};' % (prefix, i, body, ',' if data else ''))
        entries.append('\t{ "%s", "%s", %s_d%d, %d },' % (name, ctype, prefix, i, len(data)))
    lines.append('const struct embedded_file %s_files[] = {' % prefix)
    lines.extend(entries)
    lines.append('\t{ NULL, NULL, NULL, 0 },')
    lines.append('};')
    with open(out, 'w') as f:
        f.write('\n'.join(lines) + '\n')


if __name__ == '__main__':
    main()
