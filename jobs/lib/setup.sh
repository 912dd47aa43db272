# jobs/lib/setup.sh - shared by jobs/quickstart.sh and tests/run.sh (sourced).
# Installs caviar's Debian packages when any is missing (apt-get update
# first), and configures + builds with CMake.  Quick when all is there.

CV_PACKAGES=(build-essential cmake pkg-config openmpi-bin libopenmpi-dev libhdf5-openmpi-dev
             hdf5-tools libopenblas-openmp-dev libyaml-dev zlib1g-dev libpng-dev
             libjpeg62-turbo-dev)

# Root runs Open MPI only with these; more ranks than cores need oversubscribe.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1

cv_missing_packages() {
    local p missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    echo "${missing[@]}"
}

cv_install() {
    local missing
    missing=$(cv_missing_packages "$@")
    [ -z "$missing" ] && return 0
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "caviar setup: installing $missing"
    $sudo apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing
}

# cv_build BUILD_DIR [cmake args...]
cv_build() {
    local dir=$1
    shift
    cmake -S "$CV_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
    cmake --build "$dir" -j"$(nproc)"
}
