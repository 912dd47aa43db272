#!/usr/bin/env bash
# tests/run.sh - the test command (.ci/run calls it): install, build with
# warnings as errors, run every ctest label, then rebuild with
# AddressSanitizer + UBSan and run the unit and mpi labels again, then fuzz
# each input reader for a minute (docs/testing.md).
set -euo pipefail
CV_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../jobs/lib/setup.sh
source "$CV_ROOT/jobs/lib/setup.sh"

# slurm + munge: tests/slurm starts a real single-node SLURM for the job scripts;
# iproute2: tests/e2e/test_two_hosts.sh makes two network-namespace hosts;
# clang-format: tests/check_format.sh; python3-sklearn: test_metrics_sklearn;
# chromium + python3-pil: test_report loads and screenshots the report pages;
# clang, its libFuzzer runtime and OpenMP: the fuzz stage (tests/fuzz/run.sh);
# python3-onnx + python3-opencv: test_onnx checks exports with real consumers;
# python3-pil + python3-opencv: test_images checks decoded and resized pixels;
# strace: test_h5_check counts the HDF5 checking processes
cv_install "${CV_PACKAGES[@]}" dataset-fashion-mnist python3-h5py slurmctld slurmd slurm-client munge \
    iproute2 clang-format python3-sklearn chromium python3-pil clang libclang-rt-dev libomp-dev \
    python3-onnx python3-opencv strace
# wamerican: the English word list /usr/share/dict/words that test_charlm imports
cv_install wamerican
export OMP_NUM_THREADS=1
# Open MPI's PMIx authenticates its local launches with munge when munge is
# installed (the SLURM test installs it). A munge socket left by a daemon that
# no longer runs makes every mpirun retry it for 2.5 s; single-node test
# launches need no munge credential, so they use PMIx's native one.
export PMIX_MCA_psec=native
# onnxruntime (npm package, run by the machine's Node.js): test_onnx_seq runs
# exported sequence models in it.  --ignore-scripts: the package ships the
# CPU library; its install script only fetches optional GPU builds.  Left
# out, the test tries once more and then skips (exit 77) saying why.
if command -v npm >/dev/null; then
    npm install --prefix "$CV_ROOT/build/onnxruntime" --ignore-scripts --no-audit --no-fund \
        onnxruntime-node@1.30.0 || echo "warning: npm could not install onnxruntime-node"
fi

echo "== format (.clang-format)"
bash "$CV_ROOT/tests/check_format.sh"

echo "== build (Release, -Werror) and all tests"
cv_build "$CV_ROOT/build" -DCV_WERROR=ON
(cd "$CV_ROOT/build" && ctest --output-on-failure -LE "${CV_TEST_EXCLUDE:-^$}")

echo "== build with -fsanitize=address,undefined; unit and mpi tests"
cv_build "$CV_ROOT/build-asan" -DCMAKE_BUILD_TYPE=Debug -DCV_SANITIZE=address,undefined
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export LSAN_OPTIONS=suppressions=$CV_ROOT/tests/sanitizers/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd "$CV_ROOT/build-asan" && ctest --output-on-failure -L "unit|mpi")
# The CLI end to end under the sanitizers: memory errors and UB are fatal;
# leaks are not checked here because MPI runs report Open MPI's own
# (dlclosed, unsymbolisable) allocations.
(cd "$CV_ROOT/build-asan" &&
    ASAN_OPTIONS=detect_leaks=0 ctest --output-on-failure \
        -R "train_eval|bad_input|hostile_input|diverge|resume_exact|e2e_test_sweep|e2e_test_ensemble|e2e_test_run_dir|e2e_test_report|metrics_sklearn|e2e_test_progress|hostile_config|checkpoint_faults|e2e_test_signals|h5_check|e2e_test_csv|e2e_test_images|predict_unlabeled")

echo "== fuzz: libFuzzer on each input reader, ${CV_FUZZ_SECONDS:-60} s each (docs/testing.md)"
bash "$CV_ROOT/tests/fuzz/run.sh"
