/* The alpha terms of a product with the FIM of all parameters, fused (optional compiled path; theory §15.4).
 *
 * add_alpha_terms(EI, CJ, EJ, A, Y): for every vector k, row unit i and coordinate a,
 *
 *     Y[k, i, a] += sum_j A[i, j] (e_i . c_kj) e_j[a],
 *
 * with EI (m, d) the unit columns of the rows, CJ (b, d, n) the vectors c of the columns, EJ (d, n)
 * the unit columns of the columns, A (m, n) the coefficient tile and Y (b, m, d) the accumulator, all
 * float64 with a unit stride along j (the tile's columns; any other strides). NumPy does the same in
 * three passes per vector (a GEMM of inner dimension d, an elementwise product with A, a GEMM of
 * output width d) whose temporaries leave the registers; here the dot products e_i . c_kj stay in
 * registers, are scaled by A and go straight into the second sum. The GIL is released during the
 * loops, so the engine's tile threads run on all cores.
 *
 * This module is optional: when it is not compiled, the library uses the NumPy passes (same results
 * to round-off).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAXN 4096

/* eight doubles in one vector register (AVX-512; split by the compiler elsewhere), loadable unaligned */
typedef double v8d __attribute__((vector_size(64), aligned(8)));

static inline v8d load8(const double *p) { v8d v; __builtin_memcpy(&v, p, sizeof v); return v; }
static inline void store8(double *p, v8d v) { __builtin_memcpy(p, &v, sizeof v); }
static inline double sum8(v8d v) { return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7])); }

static int get(PyObject *obj, Py_buffer *view, int ndim, int writable, const char *name) {
    int flags = PyBUF_STRIDES | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) return -1;
    if (view->ndim != ndim || view->itemsize != 8 || view->format == NULL || view->format[0] != 'd') {
        PyErr_Format(PyExc_TypeError, "%s must be a %d-D float64 array", name, ndim);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* w[j] = A[j] * sum_l e[l] c[l][j]: 64 columns at a time in eight independent register accumulators */
static void first_sum(const double *restrict e, Py_ssize_t se, const double *restrict c, Py_ssize_t sc,
                      const double *restrict a, Py_ssize_t d, Py_ssize_t n, double *restrict w) {
    Py_ssize_t j0 = 0;
    for (; j0 + 64 <= n; j0 += 64) {
        v8d s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0}, s4 = {0}, s5 = {0}, s6 = {0}, s7 = {0};
        for (Py_ssize_t l = 0; l < d; l++) {
            const double el = e[l * se];
            const double *cl = c + l * sc + j0;
            s0 += el * load8(cl);
            s1 += el * load8(cl + 8);
            s2 += el * load8(cl + 16);
            s3 += el * load8(cl + 24);
            s4 += el * load8(cl + 32);
            s5 += el * load8(cl + 40);
            s6 += el * load8(cl + 48);
            s7 += el * load8(cl + 56);
        }
        const double *aj = a + j0;
        double *wj = w + j0;
        store8(wj, s0 * load8(aj));
        store8(wj + 8, s1 * load8(aj + 8));
        store8(wj + 16, s2 * load8(aj + 16));
        store8(wj + 24, s3 * load8(aj + 24));
        store8(wj + 32, s4 * load8(aj + 32));
        store8(wj + 40, s5 * load8(aj + 40));
        store8(wj + 48, s6 * load8(aj + 48));
        store8(wj + 56, s7 * load8(aj + 56));
    }
    for (; j0 + 8 <= n; j0 += 8) {
        v8d s = {0};
        for (Py_ssize_t l = 0; l < d; l++) s += e[l * se] * load8(c + l * sc + j0);
        store8(w + j0, s * load8(a + j0));
    }
    for (Py_ssize_t j = j0; j < n; j++) {
        double s = 0.0;
        for (Py_ssize_t l = 0; l < d; l++) s += e[l * se] * c[l * sc + j];
        w[j] = a[j] * s;
    }
}

static void second_sum(const double *restrict w, const double *restrict E, Py_ssize_t sE, Py_ssize_t d,
                       Py_ssize_t n, double *restrict y, Py_ssize_t sy);

/* first_sum for four rows at once (rows e + r * sr, coefficient rows a + r * sa, outputs w + r * sw) */
static void first_sum4(const double *restrict e, Py_ssize_t sr, Py_ssize_t se, const double *restrict c,
                       Py_ssize_t sc, const double *restrict a, Py_ssize_t sa, Py_ssize_t d, Py_ssize_t n,
                       double *restrict w, Py_ssize_t sw) {
    Py_ssize_t j0 = 0;
    for (; j0 + 16 <= n; j0 += 16) {
        v8d s[4][2];
        for (int r = 0; r < 4; r++) s[r][0] = s[r][1] = (v8d){0};
        for (Py_ssize_t l = 0; l < d; l++) {
            const double *cl = c + l * sc + j0;
            const v8d c0 = load8(cl), c1 = load8(cl + 8);
            _Pragma("GCC unroll 4")
            for (int r = 0; r < 4; r++) {
                const double el = e[r * sr + l * se];
                s[r][0] += el * c0;
                s[r][1] += el * c1;
            }
        }
        _Pragma("GCC unroll 4")
        for (int r = 0; r < 4; r++) {
            store8(w + r * sw + j0, s[r][0] * load8(a + r * sa + j0));
            store8(w + r * sw + j0 + 8, s[r][1] * load8(a + r * sa + j0 + 8));
        }
    }
    if (j0 < n)
        for (int r = 0; r < 4; r++) first_sum(e + r * sr, se, c + j0, sc, a + r * sa + j0, d, n - j0, w + r * sw + j0);
}

/* y_r[a] += sum_j w_r[j] E[a][j] for four rows r and four coordinates a at a time */
static void second_sum4(const double *restrict w, Py_ssize_t sw, const double *restrict E, Py_ssize_t sE,
                        Py_ssize_t d, Py_ssize_t n, double *restrict y, Py_ssize_t sr, Py_ssize_t sy) {
    Py_ssize_t a = 0;
    for (; a + 4 <= d; a += 4) {
        v8d s[4][4];
        for (int r = 0; r < 4; r++) for (int u = 0; u < 4; u++) s[r][u] = (v8d){0};
        Py_ssize_t j = 0;
        for (; j + 8 <= n; j += 8) {
            v8d e[4];
            _Pragma("GCC unroll 4")
            for (int u = 0; u < 4; u++) e[u] = load8(E + (a + u) * sE + j);
            _Pragma("GCC unroll 4")
            for (int r = 0; r < 4; r++) {
                const v8d wr = load8(w + r * sw + j);
                _Pragma("GCC unroll 4")
                for (int u = 0; u < 4; u++) s[r][u] += wr * e[u];
            }
        }
        for (int r = 0; r < 4; r++)
            for (int u = 0; u < 4; u++) {
                double t = sum8(s[r][u]);
                for (Py_ssize_t jj = j; jj < n; jj++) t += w[r * sw + jj] * E[(a + u) * sE + jj];
                y[r * sr + (a + u) * sy] += t;
            }
    }
    if (a < d)
        for (int r = 0; r < 4; r++) second_sum(w + r * sw, E + a * sE, sE, d - a, n, y + r * sr + a * sy, sy);
}

/* y[a] += sum_j w[j] E[a][j] for NA coordinates at once (NA register accumulators, one load of w each) */
#define SECOND_SUM(NA)                                                                                   \
    static void second_sum_##NA(const double *restrict w, const double *restrict E, Py_ssize_t sE,      \
                                Py_ssize_t n, double *restrict y, Py_ssize_t sy) {                       \
        v8d s[NA];                                                                                       \
        for (int t = 0; t < NA; t++) s[t] = (v8d){0};                                                    \
        Py_ssize_t j = 0;                                                                                \
        for (; j + 8 <= n; j += 8) {                                                                     \
            const v8d wj = load8(w + j);                                                                 \
            _Pragma("GCC unroll 8")                                                                      \
            for (int t = 0; t < NA; t++) s[t] += wj * load8(E + t * sE + j);                             \
        }                                                                                                \
        for (int t = 0; t < NA; t++) {                                                                   \
            double r = sum8(s[t]);                                                                       \
            for (Py_ssize_t jj = j; jj < n; jj++) r += w[jj] * E[t * sE + jj];                           \
            y[t * sy] += r;                                                                              \
        }                                                                                                \
    }
SECOND_SUM(8)
SECOND_SUM(4)
SECOND_SUM(2)
SECOND_SUM(1)

static void second_sum(const double *restrict w, const double *restrict E, Py_ssize_t sE, Py_ssize_t d,
                       Py_ssize_t n, double *restrict y, Py_ssize_t sy) {
    Py_ssize_t a = 0;
    for (; a + 8 <= d; a += 8) second_sum_8(w, E + a * sE, sE, n, y + a * sy, sy);
    for (; a + 4 <= d; a += 4) second_sum_4(w, E + a * sE, sE, n, y + a * sy, sy);
    for (; a + 2 <= d; a += 2) second_sum_2(w, E + a * sE, sE, n, y + a * sy, sy);
    for (; a < d; a++) second_sum_1(w, E + a * sE, sE, n, y + a * sy, sy);
}

static PyObject *add_alpha_terms(PyObject *self, PyObject *args) {
    PyObject *oei, *oc, *oej, *oa, *oy;
    if (!PyArg_ParseTuple(args, "OOOOO", &oei, &oc, &oej, &oa, &oy)) return NULL;
    Py_buffer ei, c, ej, a, y;
    if (get(oei, &ei, 2, 0, "EI") < 0) return NULL;
    if (get(oc, &c, 3, 0, "CJ") < 0) { PyBuffer_Release(&ei); return NULL; }
    if (get(oej, &ej, 2, 0, "EJ") < 0) { PyBuffer_Release(&ei); PyBuffer_Release(&c); return NULL; }
    if (get(oa, &a, 2, 0, "A") < 0) { PyBuffer_Release(&ei); PyBuffer_Release(&c); PyBuffer_Release(&ej); return NULL; }
    if (get(oy, &y, 3, 1, "Y") < 0) {
        PyBuffer_Release(&ei); PyBuffer_Release(&c); PyBuffer_Release(&ej); PyBuffer_Release(&a);
        return NULL;
    }
    const Py_ssize_t m = ei.shape[0], d = ei.shape[1], b = c.shape[0], n = c.shape[2];
    const int shapes_ok = c.shape[1] == d && ej.shape[0] == d && ej.shape[1] == n && a.shape[0] == m
        && a.shape[1] == n && y.shape[0] == b && y.shape[1] == m && y.shape[2] == d;
    const int strides_ok = c.strides[2] == 8 && ej.strides[1] == 8 && a.strides[1] == 8
        && ei.strides[0] % 8 == 0 && ei.strides[1] % 8 == 0 && c.strides[0] % 8 == 0 && c.strides[1] % 8 == 0
        && ej.strides[0] % 8 == 0 && a.strides[0] % 8 == 0 && y.strides[0] % 8 == 0 && y.strides[1] % 8 == 0
        && y.strides[2] % 8 == 0;
    if (!shapes_ok || !strides_ok || n > MAXN) {
        PyErr_SetString(PyExc_ValueError, shapes_ok && strides_ok
            ? "add_alpha_terms: at most 4096 columns per tile"
            : "add_alpha_terms: EI (m, d), CJ (b, d, n), EJ (d, n), A (m, n), Y (b, m, d), unit stride along n");
        PyBuffer_Release(&ei); PyBuffer_Release(&c); PyBuffer_Release(&ej); PyBuffer_Release(&a); PyBuffer_Release(&y);
        return NULL;
    }
    const double *pei = ei.buf, *pc = c.buf, *pej = ej.buf, *pa = a.buf;
    double *py = y.buf;
    const Py_ssize_t se0 = ei.strides[0] / 8, se1 = ei.strides[1] / 8, sc0 = c.strides[0] / 8, sc1 = c.strides[1] / 8;
    const Py_ssize_t sj0 = ej.strides[0] / 8, sa0 = a.strides[0] / 8;
    const Py_ssize_t sy0 = y.strides[0] / 8, sy1 = y.strides[1] / 8, sy2 = y.strides[2] / 8;
    /* the unit columns and each vector's c block, copied to 64-byte aligned rows: a vector load that
       straddles two cache lines costs two (NumPy's arrays are 16-byte aligned) */
    const Py_ssize_t ld = (n + 7) / 8 * 8;
    double *buf = aligned_alloc(64, (size_t)(2 * d * ld + 4 * ld + m * ld) * sizeof(double));
    if (buf == NULL) {
        PyBuffer_Release(&ei); PyBuffer_Release(&c); PyBuffer_Release(&ej); PyBuffer_Release(&a); PyBuffer_Release(&y);
        return PyErr_NoMemory();
    }
    Py_BEGIN_ALLOW_THREADS
    double *Eb = buf, *cb = buf + d * ld, *w = buf + 2 * d * ld, *Ab = w + 4 * ld;  /* w: four rows */
    for (Py_ssize_t l = 0; l < d; l++) memcpy(Eb + l * ld, pej + l * sj0, (size_t)n * sizeof(double));
    for (Py_ssize_t i = 0; i < m; i++) memcpy(Ab + i * ld, pa + i * sa0, (size_t)n * sizeof(double));
    for (Py_ssize_t k = 0; k < b; k++) {  /* a vector's c block (d x n) stays in L1 over the rows */
        for (Py_ssize_t l = 0; l < d; l++) memcpy(cb + l * ld, pc + k * sc0 + l * sc1, (size_t)n * sizeof(double));
        Py_ssize_t i = 0;
        for (; i + 4 <= m; i += 4) {  /* four rows at a time: each load of c and of E serves four */
            first_sum4(pei + i * se0, se0, se1, cb, ld, Ab + i * ld, ld, d, n, w, ld);
            second_sum4(w, ld, Eb, ld, d, n, py + k * sy0 + i * sy1, sy1, sy2);
        }
        for (; i < m; i++) {  /* the last m mod 4 rows of a tile, one at a time */
            first_sum(pei + i * se0, se1, cb, ld, Ab + i * ld, d, n, w);
            second_sum(w, Eb, ld, d, n, py + k * sy0 + i * sy1, sy2);
        }
    }
    Py_END_ALLOW_THREADS
    free(buf);
    PyBuffer_Release(&ei); PyBuffer_Release(&c); PyBuffer_Release(&ej); PyBuffer_Release(&a); PyBuffer_Release(&y);
    Py_RETURN_NONE;
}

/* Fortran BLAS dgemm, as scipy.linalg.cython_blas exports it (a capsule holding the function pointer) */
typedef void dgemm_t(char *, char *, int *, int *, int *, double *, double *, int *, double *, int *, double *,
                     double *, int *);

static PyObject *add_product(PyObject *self, PyObject *args) {
    PyObject *cap, *oa, *ob, *oc;
    double alpha;
    if (!PyArg_ParseTuple(args, "OOOOd", &cap, &oa, &ob, &oc, &alpha)) return NULL;
    dgemm_t *dgemm = (dgemm_t *)PyCapsule_GetPointer(cap, PyCapsule_GetName(cap));
    if (dgemm == NULL) return NULL;
    Py_buffer a, b, c;
    if (get(oa, &a, 2, 0, "a") < 0) return NULL;
    if (get(ob, &b, 2, 0, "b") < 0) { PyBuffer_Release(&a); return NULL; }
    if (get(oc, &c, 2, 1, "out") < 0) { PyBuffer_Release(&a); PyBuffer_Release(&b); return NULL; }
    int M = (int)c.shape[0], N = (int)c.shape[1], K = (int)a.shape[1];
    /* out (row-major, unit column stride) += alpha a @ b is out^T += alpha b^T a^T in column-major terms */
    int ok = a.shape[0] == M && b.shape[0] == K && b.shape[1] == N && c.strides[1] == 8 && b.strides[1] == 8
        && (a.strides[1] == 8 || a.strides[0] == 8) && M > 0 && N > 0 && K > 0;
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "add_product: a (M, K), b (K, N), out (M, N), unit stride along the rows "
                                          "of b and out and along either axis of a");
        PyBuffer_Release(&a); PyBuffer_Release(&b); PyBuffer_Release(&c);
        return NULL;
    }
    char tb_ = 'N', ta_;
    int ldb = (int)(b.strides[0] / 8), ldc = (int)(c.strides[0] / 8), lda;
    if (a.strides[1] == 8 && (a.strides[0] != 8 || K == 1)) { ta_ = 'N'; lda = (int)(a.strides[0] / 8); }
    else { ta_ = 'T'; lda = (int)(a.strides[1] / 8); }
    if (lda < 1) lda = 1;
    double one = 1.0;
    Py_BEGIN_ALLOW_THREADS
    dgemm(&tb_, &ta_, &N, &M, &K, &alpha, (double *)b.buf, &ldb, (double *)a.buf, &lda, &one, (double *)c.buf, &ldc);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&a); PyBuffer_Release(&b); PyBuffer_Release(&c);
    Py_RETURN_NONE;
}

/* One pass over a cosine tile: T clipped to [-1, 1] in place, K0 = (pi - theta) / (2 pi),
   A = 1 / (2 pi sin theta) (0 where sin theta = 0), B = cos theta A (theory §15.4). */
static PyObject *angle_coefficients(PyObject *self, PyObject *args) {
    PyObject *ot, *ok, *oa, *ob;
    if (!PyArg_ParseTuple(args, "OOOO", &ot, &ok, &oa, &ob)) return NULL;
    Py_buffer t, k, a, b;
    if (get(ot, &t, 2, 1, "T") < 0) return NULL;
    if (get(ok, &k, 2, 1, "K0") < 0) { PyBuffer_Release(&t); return NULL; }
    if (get(oa, &a, 2, 1, "A") < 0) { PyBuffer_Release(&t); PyBuffer_Release(&k); return NULL; }
    if (get(ob, &b, 2, 1, "B") < 0) { PyBuffer_Release(&t); PyBuffer_Release(&k); PyBuffer_Release(&a); return NULL; }
    const Py_ssize_t m = t.shape[0], n = t.shape[1];
    int ok_ = k.shape[0] == m && k.shape[1] == n && a.shape[0] == m && a.shape[1] == n && b.shape[0] == m
        && b.shape[1] == n && t.strides[1] == 8 && k.strides[1] == 8 && a.strides[1] == 8 && b.strides[1] == 8;
    if (!ok_) {
        PyErr_SetString(PyExc_ValueError, "angle_coefficients: T, K0, A, B of one shape, unit stride along the rows");
        PyBuffer_Release(&t); PyBuffer_Release(&k); PyBuffer_Release(&a); PyBuffer_Release(&b);
        return NULL;
    }
    const double inv2pi = 0.15915494309189533577;  /* 1 / (2 pi) */
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < m; i++) {
        double *restrict tr = (double *)((char *)t.buf + i * t.strides[0]);
        double *restrict kr = (double *)((char *)k.buf + i * k.strides[0]);
        double *restrict ar = (double *)((char *)a.buf + i * a.strides[0]);
        double *restrict br = (double *)((char *)b.buf + i * b.strides[0]);
#pragma omp simd
        for (Py_ssize_t j = 0; j < n; j++) {
            double c = tr[j];
            c = c > 1.0 ? 1.0 : (c < -1.0 ? -1.0 : c);
            tr[j] = c;
            kr[j] = 0.5 - acos(c) * inv2pi;
            const double s2 = (1.0 - c) * (1.0 + c);
            const double r = s2 > 0.0 ? inv2pi / sqrt(s2) : 0.0;
            ar[j] = r;
            br[j] = c * r;
        }
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&t); PyBuffer_Release(&k); PyBuffer_Release(&a); PyBuffer_Release(&b);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"angle_coefficients", angle_coefficients, METH_VARARGS,
     "angle_coefficients(T, K0, A, B): clip T; K0 = (pi - acos T) / 2 pi, A = 1 / (2 pi sin), B = T A, one pass."},
    {"add_product", add_product, METH_VARARGS,
     "add_product(dgemm, a, b, out, alpha): out += alpha a @ b by the BLAS dgemm in the capsule, without the GIL."},
    {"add_alpha_terms", add_alpha_terms, METH_VARARGS,
     "add_alpha_terms(EI, CJ, EJ, A, Y): Y[k, i, a] += sum_j A[i, j] (EI[i] . CJ[k, :, j]) EJ[a, j]."},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_calpha", NULL, -1, methods};

PyMODINIT_FUNC PyInit__calpha(void) { return PyModule_Create(&module); }
