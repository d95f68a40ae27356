import CBLAS

/// The one seam between the numerics and BLAS: every matrix product in the library goes through here.
/// Matrices are row-major Float32; `a` is m x k (or k x m when `transposeA`), `b` is k x n (or n x k),
/// each stored with its own row stride (`lda`, `ldb`, `ldc`; by default the matrix's width), so
/// that a thread can work on a block of columns of a larger matrix in place.
enum LinearAlgebra {
    /// The library parallelises around BLAS; BLAS threads inside each part would compete with it.
    static func useOneBLASThread() {
        openblas_set_num_threads(1)
    }

    /// c (m x n) = a . b + beta * c
    @inline(__always)
    static func multiply(_ a: UnsafePointer<Float>, lda: Int? = nil, transposeA: Bool = false,
                         _ b: UnsafePointer<Float>, ldb: Int? = nil, transposeB: Bool = false,
                         into c: UnsafeMutablePointer<Float>, ldc: Int? = nil,
                         m: Int, n: Int, k: Int, beta: Float = 0) {
        cblas_sgemm(CblasRowMajor,
                    transposeA ? CblasTrans : CblasNoTrans,
                    transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k),
                    1, a, Int32(lda ?? (transposeA ? m : k)), b, Int32(ldb ?? (transposeB ? k : n)),
                    beta, c, Int32(ldc ?? n))
    }
}

/// Part `part` of `0..<count` cut into `parts` nearly equal pieces whose starts are multiples of
/// `align` (so that threads writing neighbouring pieces do not share cache lines); may be empty.
@inline(__always)
func piece(of count: Int, part: Int, parts: Int, align: Int = 16) -> Range<Int> {
    let size = ((count + parts - 1) / parts + align - 1) / align * align
    let start = min(part * size, count)
    return start..<min(start + size, count)
}
