#!/bin/sh
# The example app's health check, run in a release directory: the deploy runs it after
# publishing (deploy_health_command) and a hook runs it before publishing. It passes when the
# release says what it was built from and its shared paths are linked and usable.
cd "$(dirname "$0")" || exit 1
release=$(basename "$(pwd -P)")
if [ ! -s REVISION ]; then
    echo "unhealthy: release $release has no REVISION" >&2
    exit 1
fi
if [ ! -r config/app.yml ]; then
    echo "unhealthy: config/app.yml of release $release does not resolve (put it in shared/config/)" >&2
    exit 1
fi
if [ ! -d log ] || [ ! -w log ]; then
    echo "unhealthy: log/ of release $release is not a writable directory (is it linked from shared/?)" >&2
    exit 1
fi
echo "healthy: release $release"
