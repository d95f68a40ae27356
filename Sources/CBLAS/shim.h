/* The CBLAS interface of the system's BLAS (OpenBLAS on Debian: libopenblas-dev). */
#include <cblas.h>
