"""Run on a test-bed host (`bed exec I python3 probe.py DEPLOY_TO SENTINEL`): what its tree holds, as JSON.

Standard library only, Python 3.8: it runs with the host's /usr/bin/python3 inside the host's
namespaces, so it reads the files exactly as the host sees them.
"""

import hashlib
import json
import os
import re
import sys

NAME = re.compile(r'^[0-9]{14}$')
# The tree's own state files (DESIGN.md: "tool state: lock, journal — inside deploy_to").
LOCK = os.path.join('.capstan', 'lock')
JOURNAL = os.path.join('.capstan', 'journal')


def digest(top):
    """One sha256 over every path under top: its type, mode, link target and content."""
    if not os.path.lexists(top):
        return None
    total = hashlib.sha256()
    for root, dirs, files in os.walk(top):
        dirs.sort()
        for name in sorted(dirs + files):
            path = os.path.join(root, name)
            info = os.lstat(path)
            total.update(('%s %o\n' % (os.path.relpath(path, top), info.st_mode)).encode())
            if os.path.islink(path):
                total.update(os.readlink(path).encode())
            elif os.path.isfile(path):
                with open(path, 'rb') as handle:
                    total.update(hashlib.sha256(handle.read()).digest())
    return total.hexdigest()


def read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def main(deploy_to, sentinel):
    current = os.path.join(deploy_to, 'current')
    link = os.readlink(current) if os.path.islink(current) else None
    target = os.path.basename(link) if link else None
    releases = os.path.join(deploy_to, 'releases')
    entries = sorted(os.listdir(releases)) if os.path.isdir(releases) else []
    release = os.path.join(releases, target) if target else None
    log = (read(os.path.join(deploy_to, 'revisions.log')) or '').splitlines()
    print(json.dumps({
        'current_exists': os.path.lexists(current),
        'current_link': link,
        'current': target,
        # complete: an absolute link to releases/<14 digits>, a real directory holding REVISION
        'complete': bool(link and link == os.path.join(releases, target) and NAME.match(target)
                         and os.path.isdir(release) and not os.path.islink(release)
                         and os.path.isfile(os.path.join(release, 'REVISION'))),
        'version': (read(os.path.join(current, 'public', 'VERSION')) or '').strip() or None,
        'revision': (read(os.path.join(current, 'REVISION')) or '').strip() or None,
        'releases': entries,
        'archives': sorted(e for e in (os.listdir(deploy_to) if os.path.isdir(deploy_to) else [])
                           if e.endswith('.tar.gz')),
        'shared': digest(os.path.join(deploy_to, 'shared')),
        'sentinel': digest(sentinel),
        'lock': (read(os.path.join(deploy_to, LOCK)) or '').strip(),
        'journal_lines': len((read(os.path.join(deploy_to, JOURNAL)) or '').splitlines()),
        'last_log': log[-1] if log else None,
    }, sort_keys=True))


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
