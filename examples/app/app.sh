#!/bin/sh
# The example app's "server", run from a release directory (usually through current/):
#   ./app.sh           prints which release it runs from, its revision and its configuration
#   ./app.sh restart   what a deploy's handler runs after publishing: records the restart in
#                      log/restarts.log (log/ is linked from shared/, so it outlives releases)
here=$(cd "$(dirname "$0")" && pwd -P)
release=$(basename "$here")
revision=$(cat "$here/REVISION" 2>/dev/null)
case ${1:-show} in
    show)
        echo "release: $release"
        echo "revision: $revision"
        cat "$here/config/app.yml"
        ;;
    restart)
        echo "restarted release $release (revision $revision)" >>"$here/log/restarts.log"
        ;;
    *)
        echo "usage: app.sh [show|restart]" >&2
        exit 2
        ;;
esac
