#!/bin/sh
# The example app's "server": prints which release it runs from and its configuration.
here=$(cd "$(dirname "$0")" && pwd -P)
echo "release: $(basename "$here")"
echo "revision: $(cat "$here/REVISION" 2>/dev/null)"
cat "$here/config/app.yml"
