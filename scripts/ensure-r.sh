#!/usr/bin/env bash
# R with lme4, the reference the mixed-model tests compare survey.glmm with (never needed to
# run the platform). Installs Debian's r-cran-lme4 with apt-get when Rscript or lme4 is
# missing; says what to do when it cannot.
set -euo pipefail
if command -v Rscript >/dev/null 2>&1 && Rscript -e 'library(lme4); library(jsonlite)' >/dev/null 2>&1; then
  exit 0
fi
echo "ensure-r: installing R and lme4 (Debian's r-cran-lme4) for the mixed-model tests" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-r: apt-get is not available: install R and its lme4 package yourself" \
       "(Rscript -e 'library(lme4)' must work); tests/survey/test_glmm.py needs them" >&2
  exit 1
fi
# Another apt run may hold the dpkg lock for a while: wait for it rather than fail.
if ! { $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq &&
       DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
         --no-install-recommends r-base-core r-cran-lme4 r-cran-jsonlite; }; then
  echo "ensure-r: could not install r-cran-lme4 with apt-get (no root, no network, or no" \
       "such package): install R and lme4 yourself; tests/survey/test_glmm.py needs them" >&2
  exit 1
fi
Rscript -e 'library(lme4); library(jsonlite)' >/dev/null 2>&1 || {
  echo "ensure-r: r-cran-lme4 is installed but R cannot load lme4" >&2
  exit 1
}
