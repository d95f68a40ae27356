import CBLAS

/// The one seam between the numerics and BLAS: every matrix product in the library goes through here.
/// Matrices are row-major Float32; `a` is m x k (or k x m when `transposeA`), `b` is k x n (or n x k).
enum LinearAlgebra {
    /// c (m x n) = a . b + beta * c
    @inline(__always)
    static func multiply(_ a: UnsafePointer<Float>, transposeA: Bool = false,
                         _ b: UnsafePointer<Float>, transposeB: Bool = false,
                         into c: UnsafeMutablePointer<Float>, m: Int, n: Int, k: Int, beta: Float = 0) {
        let lda = transposeA ? m : k
        let ldb = transposeB ? k : n
        cblas_sgemm(CblasRowMajor,
                    transposeA ? CblasTrans : CblasNoTrans,
                    transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k),
                    1, a, Int32(lda), b, Int32(ldb),
                    beta, c, Int32(n))
    }
}
