# Copyright (c) 2026, capstan.release contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a release holds, and how it gets there, one module a job.

- ``manifests``: the manifest of a directory or a tarball, checked, digested, summed up, sent as JSON.
- ``holdings``: what a host's tree already holds: its release dirs, the live one, the manifests
  stored of the releases built in it (``<deploy_to>/.capstan/manifests/<release>.json``).
- ``plans``: which contents earlier releases hold and what a host lacks (``plan``), and the
  controller's bundle of what it lacks (``write_bundle``).
- ``builds``: a release built with hard links for what earlier releases hold, the rest from a
  tarball (``build``, ``build_from_tar``).
- ``git_source``: a mirror in ``<deploy_to>/repo``, a version resolved, a commit exported.
- ``archive_source``: a tarball at a URL or a path on the host, downloaded, checked, built from.

Controller side (copy): ``manifests.scan_source`` and ``plans.write_bundle``. Host side:
``plans.plan``, ``builds.build``, ``git_source.resolve_git``, ``archive_source.resolve_archive``,
``builds.build_from_tar``.
"""
