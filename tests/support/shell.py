"""A user's shell, as the train stage's kernel pin must withstand it (tests/training/
test_kernels.py, benchmarks/kernel_paths.py)."""

# What a user's shell may set that would change the bytes if the stage did not pin them over.
HOSTILE = {
    "TF_NUM_INTRAOP_THREADS": "8",
    "TF_NUM_INTEROP_THREADS": "8",
    "TF_ENABLE_ONEDNN_OPTS": "0",
    "ONEDNN_MAX_CPU_ISA": "AVX512_CORE_AMX",
    "DNNL_MAX_CPU_ISA": "AVX",
    "ONEDNN_DEFAULT_FPMATH_MODE": "BF16",
}
