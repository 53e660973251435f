/* aedaemon.dsp._native: the hot inner loops of the changed-frame path, in plain C.
 *
 * Every function takes numpy arrays (or anything else exporting a C-contiguous buffer of the
 * right item type and length) through the buffer protocol: no numpy headers are needed to
 * build this, so an isolated build needs only setuptools and a C compiler. The Python classes
 * in phase.py, pitch.py and shaping.py own every buffer (allocated once, in __init__); these
 * functions allocate nothing on the heap. Wrong item types raise TypeError, wrong lengths
 * ValueError.
 *
 * Built with -O2 -ffp-contract=off (setup.py): no fused multiply-adds, so every expression is
 * rounded as the NumPy reference (the benchmarks/ reference modules) rounds it, on x86-64 and aarch64.
 * The algorithms and their derivations are documented in the Python modules; the comments here
 * say only what each loop reproduces.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* ---- buffers ---------------------------------------------------------------------------- */

typedef enum { F64, F32, I64, U8, C64 } kind_t;

static const char *kind_name(kind_t k)
{
    switch (k) {
    case F64: return "float64";
    case F32: return "float32";
    case I64: return "int64";
    case U8: return "bool or uint8";
    default: return "complex64";
    }
}

static int format_ok(const Py_buffer *v, kind_t k)
{
    const char *f = v->format ? v->format : "B";
    if (*f == '@' || *f == '=' || *f == '<') f++;
    switch (k) {
    case F64: return v->itemsize == 8 && strcmp(f, "d") == 0;
    case F32: return v->itemsize == 4 && strcmp(f, "f") == 0;
    case I64: return v->itemsize == 8 && (strcmp(f, "l") == 0 || strcmp(f, "q") == 0);
    case U8: return v->itemsize == 1 && (strcmp(f, "?") == 0 || strcmp(f, "B") == 0);
    default: return v->itemsize == 8 && strcmp(f, "Zf") == 0;
    }
}

/* A buffer argument: name (for messages), item kind, required length (-1: any), writable. */
typedef struct {
    const char *name;
    kind_t kind;
    Py_ssize_t len;
    int writable;
} spec_t;

#define MAXBUF 24

typedef struct {
    Py_buffer v[MAXBUF];
    int n;
} bufs_t;

static void release(bufs_t *b)
{
    for (int i = 0; i < b->n; i++) PyBuffer_Release(&b->v[i]);
    b->n = 0;
}

/* Get args[0..count) as buffers per spec; on failure everything got so far is released. */
static int get_bufs(const char *fn, PyObject *const *args, const spec_t *spec, int count, bufs_t *b)
{
    b->n = 0;
    for (int i = 0; i < count; i++) {
        int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (spec[i].writable ? PyBUF_WRITABLE : 0);
        if (PyObject_GetBuffer(args[i], &b->v[i], flags) < 0) {
            PyObject *t, *val, *tb;
            PyErr_Fetch(&t, &val, &tb);
            Py_XDECREF(t); Py_XDECREF(val); Py_XDECREF(tb);
            release(b);
            PyErr_Format(PyExc_TypeError, "%s: %s must be a C-contiguous%s %s array", fn, spec[i].name,
                         spec[i].writable ? " writable" : "", kind_name(spec[i].kind));
            return -1;
        }
        b->n = i + 1;
        if (!format_ok(&b->v[i], spec[i].kind)) {
            release(b);
            PyErr_Format(PyExc_TypeError, "%s: %s must be a %s array", fn, spec[i].name, kind_name(spec[i].kind));
            return -1;
        }
        Py_ssize_t len = b->v[i].len / b->v[i].itemsize;
        if (spec[i].len >= 0 && len != spec[i].len) {
            release(b);
            PyErr_Format(PyExc_ValueError, "%s: %s has %zd elements, expected %zd", fn, spec[i].name, len, spec[i].len);
            return -1;
        }
    }
    return 0;
}

static int check_nargs(const char *fn, Py_ssize_t nargs, Py_ssize_t want)
{
    if (nargs != want) {
        PyErr_Format(PyExc_TypeError, "%s() takes %zd arguments (%zd given)", fn, want, nargs);
        return -1;
    }
    return 0;
}

/* the length of a float64 buffer argument, as the frame size every other length derives from */
static Py_ssize_t f64_len(const char *fn, PyObject *o, const char *name)
{
    Py_buffer v;
    if (PyObject_GetBuffer(o, &v, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s: %s must be a C-contiguous float64 array", fn, name);
        return -1;
    }
    int ok = format_ok(&v, F64);
    Py_ssize_t n = v.len / (v.itemsize ? v.itemsize : 1);
    PyBuffer_Release(&v);
    if (!ok) {
        PyErr_Format(PyExc_TypeError, "%s: %s must be a float64 array", fn, name);
        return -1;
    }
    return n;
}

#define D(i) ((double *)b.v[i].buf)
#define F(i) ((float *)b.v[i].buf)
#define L(i) ((int64_t *)b.v[i].buf)
#define U(i) ((uint8_t *)b.v[i].buf)

/* NumPy's maximum/minimum: NaN if either is NaN */
static inline double np_max(double a, double b) { return (a >= b || a != a) ? a : b; }
static inline double np_min(double a, double b) { return (a <= b || a != a) ? a : b; }
/* NumPy's max over an array (NaN propagates); 0 for no elements */
static double np_amax(const double *x, Py_ssize_t n)
{
    if (n <= 0) return 0.0;
    double m = x[0];
    int nan = 0;
    for (Py_ssize_t i = 1; i < n; i++) { /* branchless: the NaN test on the side */
        double xi = x[i];
        m = xi > m ? xi : m;
        nan |= xi != xi;
    }
    return nan || m != m ? NAN : m;
}
/* Python's max(a, b): a unless b > a */
static inline double py_max(double a, double b) { return b > a ? b : a; }

/* ---- log magnitude and the time-direction phase gradient (phase._GradientMixin) ---------- */

/* slog = log(max(mag, floor)), floor = max(top * floor_rel, 1e-30); tgrad = centred difference
 * (one-sided plus/minus the Gaussian's curvature next to a floored bin when one_sided), times
 * mul, plus plus. Returns top = max(mag). */
static double log_tgrad(const double *mag, Py_ssize_t n, double *slog, double *t, const double *plus,
                        double floor_rel, double mul, double curv, int one_sided)
{
    double top = np_amax(mag, n);
    double floor = py_max(top * floor_rel, 1e-30);
    double lf = log(floor);
    for (Py_ssize_t v = 0; v < n; v++) {
        double m = mag[v];
        slog[v] = m > floor ? log(m) : (m != m ? m : lf);
    }
    if (n < 2) {
        for (Py_ssize_t v = 0; v < n; v++) t[v] = 0.0 * mul + plus[v];
        return top;
    }
    t[0] = 0.0;
    t[n - 1] = 0.0;
    for (Py_ssize_t v = 1; v < n - 1; v++) t[v] = slog[v + 1] - slog[v - 1];
    if (one_sided) {
        for (Py_ssize_t v = 1; v < n - 1; v++) {
            if (!(mag[v] > floor)) continue;
            int low_l = !(mag[v - 1] > floor), low_r = !(mag[v + 1] > floor);
            if (low_l && low_r)
                t[v] = 0.0;
            else if (low_r)
                t[v] = 2.0 * (slog[v] - slog[v - 1]) - curv;
            else if (low_l)
                t[v] = 2.0 * (slog[v + 1] - slog[v]) + curv;
        }
    }
    for (Py_ssize_t v = 0; v < n; v++) {
        double x = t[v] * mul;
        t[v] = x + plus[v];
    }
    return top;
}

/* ---- output spectrum ------------------------------------------------------------------- */

/* spectrum = mag * (-1)^m * exp(i * float32(phase)) as complex64, times float32(gain) */
static PyObject *emit(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    static const char *fn = "emit";
    if (check_nargs(fn, nargs, 5) < 0) return NULL;
    Py_ssize_t n = f64_len(fn, args[0], "magnitude");
    if (n < 0) return NULL;
    double gain = PyFloat_AsDouble(args[4]);
    if (gain == -1.0 && PyErr_Occurred()) return NULL;
    const spec_t spec[] = {
        {"magnitude", F64, n, 0}, {"phase", F64, n, 0}, {"sign", F64, n, 0}, {"spectrum", C64, n, 1},
    };
    bufs_t b;
    if (get_bufs(fn, args, spec, 4, &b) < 0) return NULL;
    const double *mag = D(0), *phase = D(1), *sign = D(2);
    float *out = F(3);
    float g = (float)gain;
    for (Py_ssize_t v = 0; v < n; v++) {
        float m = (float)(mag[v] * sign[v]);
        if (m == 0.0f) {
            out[2 * v] = 0.0f;
            out[2 * v + 1] = 0.0f;
            continue;
        }
        float p = (float)phase[v];
        float re = cosf(p) * m, im = sinf(p) * m;
        out[2 * v] = re * g;
        out[2 * v + 1] = im * g;
    }
    release(&b);
    Py_RETURN_NONE;
}

/* x = offset + scale * x (numpy's Generator.uniform from Generator.random's values) */
static PyObject *affine(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    static const char *fn = "affine";
    if (check_nargs(fn, nargs, 3) < 0) return NULL;
    double scale = PyFloat_AsDouble(args[1]);
    if (scale == -1.0 && PyErr_Occurred()) return NULL;
    double offset = PyFloat_AsDouble(args[2]);
    if (offset == -1.0 && PyErr_Occurred()) return NULL;
    const spec_t spec[] = {{"x", F64, -1, 1}};
    bufs_t b;
    if (get_bufs(fn, args, spec, 1, &b) < 0) return NULL;
    double *x = D(0);
    Py_ssize_t n = b.v[0].len / 8;
    for (Py_ssize_t i = 0; i < n; i++) x[i] = offset + scale * x[i];
    release(&b);
    Py_RETURN_NONE;
}

/* ---- CANNe: time-direction integration, phase-locked to the lobe's peak ------------------ */

enum { CP_MUL, CP_FLOOR, CP_CURV, CP_ONE_SIDED, CP_LOCK, CP_N };

/* canne_next(magnitude, phase, tgrad, prev_tgrad, tgrad_plus, slog, steady_step, peak_tmp,
 *            params, changed) */
static PyObject *canne_next(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    static const char *fn = "canne_next";
    if (check_nargs(fn, nargs, 10) < 0) return NULL;
    Py_ssize_t n = f64_len(fn, args[0], "magnitude");
    if (n < 0) return NULL;
    int changed = PyObject_IsTrue(args[9]);
    if (changed < 0) return NULL;
    const spec_t spec[] = {
        {"magnitude", F64, n, 0}, {"phase", F64, n, 1}, {"tgrad", F64, n, 1}, {"prev_tgrad", F64, n, 1},
        {"tgrad_plus", F64, n, 0}, {"slog", F64, n, 1}, {"steady_step", F64, n, 1}, {"peak_tmp", I64, n, 1},
        {"params", F64, CP_N, 0},
    };
    bufs_t b;
    if (get_bufs(fn, args, spec, 9, &b) < 0) return NULL;
    const double *mag = D(0), *plus = D(4), *par = D(8);
    double *phase = D(1), *tg = D(2), *ptg = D(3), *slog = D(5), *steady = D(6);
    int64_t *rp = L(7);
    if (!changed) {
        for (Py_ssize_t v = 0; v < n; v++) phase[v] += steady[v];
        release(&b);
        Py_RETURN_NONE;
    }
    memcpy(ptg, tg, n * sizeof(double));
    log_tgrad(mag, n, slog, tg, plus, par[CP_FLOOR], par[CP_MUL], par[CP_CURV], par[CP_ONE_SIDED] != 0.0);
    if (par[CP_LOCK] == 0.0) {
        for (Py_ssize_t v = 0; v < n; v++) {
            phase[v] += (ptg[v] + tg[v]) * 0.5;
            steady[v] = tg[v];
        }
        release(&b);
        Py_RETURN_NONE;
    }
    /* peak of v: v at a local maximum (s >= left, s > right; -1 outside), else the nearest
     * peak uphill (left when left >= right); none that way: bin 0 / bin n-1 */
#define LEFT(v) ((v) > 0 ? mag[(v) - 1] : -1.0)
#define RIGHT(v) ((v) < n - 1 ? mag[(v) + 1] : -1.0)
#define IS_PEAK(v) (mag[v] >= LEFT(v) && mag[v] > RIGHT(v))
    int64_t next_peak = n - 1;
    for (Py_ssize_t v = n - 1; v >= 0; v--) {
        if (IS_PEAK(v)) next_peak = v;
        rp[v] = next_peak;
    }
    int64_t last_peak = 0;
    for (Py_ssize_t v = 0; v < n; v++) {
        int64_t p;
        if (IS_PEAK(v)) {
            last_peak = v;
            p = v;
        } else {
            p = LEFT(v) >= RIGHT(v) ? last_peak : rp[v];
        }
        phase[v] += (ptg[p] + tg[p]) * 0.5;
        steady[v] = tg[p];
    }
#undef LEFT
#undef RIGHT
#undef IS_PEAK
    release(&b);
    Py_RETURN_NONE;
}

/* ---- RTPGHI --------------------------------------------------------------------------- */

enum { RP_TMUL, RP_FMUL, RP_FLOOR, RP_CURV, RP_ONE_SIDED, RP_TOL, RP_REACH, RP_LOBE, RP_FCLIP, RP_JUMP, RP_NOISE_PROM,
       RP_NOISE_GAIN, RP_NOISE_HELD, RP_PEAK_FREQ, RP_NOISE_RUN, RP_PEAK_FLOOR, RP_PATTERN_ALL, RP_PEAK_MIN, RP_HANN_LO, RP_HANN_HI, RP_NOISE_SEG, RP_QUAD, RP_N };
enum { RS_POWER, RS_TOP0, RS_TOP1, RS_TOP, RS_RANDOM_AT, RS_STEADY, RS_PREV_TOP, RS_N };

#define RIGHT_BIT 4 /* bit 0: alive */
#define LEFT_BIT 2
#define LOBE_BIT 8
#define NOISE_BIT 16 /* a noise-band bin (or another bin at its bin frequency) of a held frame */

/* The propagation of phase.RTPGHI._integrate: the heap order is the bottleneck path value of
 * two scans (left-to-right and right-to-left, float32), each bin takes its phase from its root
 * through running sums of the frequency-direction trapezoids, dead bins take the next random
 * phases, far bins of broad runs become their own roots.
 *
 * Work set: only the live bins (s >= tol) and their neighbours, compacted (a decoded frame has
 * ~15 % live bins). Every other bin is dead with dead neighbours: seed and expand are -inf
 * around it, so it is its own root, takes a random phase, and no path crosses it; a run of the
 * work set starts and ends on a dead bin, so the scans and sums on the compacted runs are the
 * full ones restricted to them (the sums skip only the exact zeros the NumPy sums add). The
 * frequency gradient is needed (and computed, into fg) on the work set only. */
static void rtpghi_integrate(Py_ssize_t n, const double *s, const double *pm, double *phase, double *tg,
                             const double *ptg, const double *plus, double *fg, const double *slog,
                             const double *h0, const double *h1, double lf, int64_t *root,
                             const double *random, Py_ssize_t n_random, const double *lobe_table, float *seed,
                             float *expand, float *reach, double *ph_r, double *up, double *down,
                             double *new_phase, int64_t *E, int64_t *anchor_r, uint8_t *flags, double *state,
                             const double *par, double top, double *emit_mag)
{
    const float NEG = -INFINITY;
    double tol = top * par[RP_TOL];
    double c = 1e-3 * tol / top;
    double fmul = par[RP_FMUL], clip = par[RP_FCLIP];
    Py_ssize_t n_dead = 0, m = 0;
    /* liveness (flags bit 0, per bin) and the work set E */
    for (Py_ssize_t v = 0; v < n; v++) {
        uint8_t alive = s[v] >= tol;
        flags[v] = alive;
        n_dead += !alive;
    }
    for (Py_ssize_t v = 0; v < n; v++) {
        int near = flags[v] || (v > 0 && flags[v - 1]) || (v < n - 1 && flags[v + 1]);
        root[v] = v;
        if (near) E[m++] = v;
    }
    /* on E (compact index i): seeds, expands, root phases, frequency gradient, the left scan */
    for (Py_ssize_t i = 0; i < m; i++) {
        Py_ssize_t v = E[i];
        if (flags[v]) {
            seed[i] = (float)(pm[v] >= tol ? pm[v] : s[v] * c);
            expand[i] = (float)s[v];
        } else {
            seed[i] = NEG;
            expand[i] = NEG;
        }
        ph_r[i] = phase[v] + 0.5 * (ptg[v] + tg[v]);
        double f = np_max(slog[v], lf) * 3.0;
        f = f - 4.0 * np_max(h1[v], lf);
        f = f + np_max(h0[v], lf);
        f = f * fmul;
        if (clip > 0.0) f = np_min(np_max(f, -clip), clip);
        fg[v] = f;
        /* the left neighbour, if in E (else dead with expand -inf: paths stop) */
        if (i == 0 || E[i - 1] != v - 1 || expand[i - 1] == NEG) {
            reach[i] = seed[i];
        } else {
            float x = reach[i - 1] < expand[i - 1] ? reach[i - 1] : expand[i - 1];
            reach[i] = seed[i] > x ? seed[i] : x;
        }
    }
    /* backward on E: the right scan (on the fly), each bin's offers and direction, the
     * descending sums and the anchors of chains going down (compact indices) */
    float rr = NEG; /* R of the next bin in E */
    double dsum = 0.0;
    Py_ssize_t ar = m - 1;
    for (Py_ssize_t i = m - 1; i >= 0; i--) {
        Py_ssize_t v = E[i];
        int next_ok = i < m - 1 && E[i + 1] == v + 1; /* the right neighbour is in E */
        float fr, fl;
        if (!next_ok || expand[i + 1] == NEG) {
            fr = NEG;
            rr = seed[i];
        } else {
            fr = rr < expand[i + 1] ? rr : expand[i + 1];
            rr = seed[i] > fr ? seed[i] : fr;
        }
        if (i == 0 || E[i - 1] != v - 1) fl = NEG;
        else fl = reach[i - 1] < expand[i - 1] ? reach[i - 1] : expand[i - 1];
        int is_root = seed[i] >= fl && seed[i] >= fr;
        int is_left = !is_root && fl >= fr;
        int is_right = !is_root && !is_left;
        flags[v] = (uint8_t)((flags[v] & 1) | (is_left ? LEFT_BIT : 0) | (is_right ? RIGHT_BIT : 0));
        /* a right bin's right neighbour is live (its offer is finite), hence in E */
        if (is_right) dsum = dsum + (fg[v] + fg[v + 1]) * 0.5;
        down[i] = dsum;
        if (!is_right) ar = i;
        anchor_r[i] = ar;
    }
    /* forward on E: ascending sums, anchors of chains going up, the new phase and the tree */
    double usum = 0.0;
    Py_ssize_t al = 0;
    for (Py_ssize_t i = 0; i < m; i++) {
        Py_ssize_t v = E[i];
        int is_left = (flags[v] & LEFT_BIT) != 0, is_right = (flags[v] & RIGHT_BIT) != 0;
        if (is_left) usum = usum + (fg[v - 1] + fg[v]) * 0.5;
        up[i] = usum;
        if (!is_left) al = i;
        if (is_left) {
            new_phase[v] = ph_r[al] + up[i] - up[al];
            root[v] = E[al];
        } else if (is_right) {
            Py_ssize_t a = anchor_r[i];
            new_phase[v] = ph_r[a] - (down[i] - down[a]);
            root[v] = E[a];
        } else {
            new_phase[v] = ph_r[i];
        }
    }
    /* dead bins: the next random phases, in bin order */
    if (n_dead) {
        Py_ssize_t start = (Py_ssize_t)state[RS_RANDOM_AT];
        if (start + n_dead > n_random) start = 0;
        Py_ssize_t k = start;
        for (Py_ssize_t v = 0; v < n; v++)
            if (!(flags[v] & 1)) new_phase[v] = random[k++];
        state[RS_RANDOM_AT] = (double)((start + n_dead + 7919) % (n_random - n));
    }
    /* broad runs: a bin further than max_reach from its root, unless on a peaked lobe, is its
     * own root at its bin frequency (only bins of E have another root) */
    double reach_max = par[RP_REACH];
    int lobe = par[RP_LOBE] > 0.0;
    for (Py_ssize_t i = 0; i < m; i++) {
        Py_ssize_t v = E[i];
        int64_t r = root[v];
        int64_t dist = r > v ? r - v : v - r;
        if (!((double)dist > reach_max)) continue;
        if (lobe) {
            double drop = slog[r] - slog[v];
            if (!(drop < lobe_table[dist])) continue;
        }
        root[v] = v;
        tg[v] = plus[v];
        new_phase[v] = phase[v] + 0.5 * (ptg[v] + tg[v]);
    }
    /* noise bands: a live bin off every peaked lobe (a local maximum standing noise_prom above
     * the lowest bin within 4 of it; its lobe: 2 bins either side) is a bin-centred sinusoid
     * of its own, and along a run of such bins the phases follow the quadrature pattern:
     * neighbours differ by -pi/4 after an even bin, 3pi/4 after an odd one, plus the run's
     * offset (a multiple of pi/2, chosen at the run's second bin nearest to the phase it had).
     * Each bin's leakage into its neighbours (half its amplitude, the Hann kernel) then adds to
     * a magnitude that is the same in every frame, instead of beating at the bin spacing; the
     * sinusoids keep 2/3 of the amplitude at their own bin, so noise-band bins are emitted
     * noise_gain (sqrt 1.5) louder (emit_mag), which brings a flat band back to its level. The
 * offset turns by pi/2 every noise_seg bins of a run: the pulse a constant-magnitude band is
 * (two per frame) moves by a quarter frame from stretch to stretch, and the band stays noise. */
    memcpy(emit_mag, s, n * sizeof(double));
    double prom = par[RP_NOISE_PROM];
    int held = state[RS_STEADY] >= 1.0 || par[RP_NOISE_HELD] == 0.0;
    /* the pattern keeps the leakage steady only when neighbouring bins turn by pi/2 a hop
     * (hop = n_fft/4); at other hops the bins keep their integrated phases */
    int quad = par[RP_QUAD] != 0.0;
    if (prom > 0.0 && held) {
        for (Py_ssize_t i = 0; i < m; i++) {
            Py_ssize_t v = E[i];
            if (!(flags[v] & 1) || v == 0 || v == n - 1 || !(s[v] > s[v - 1] && s[v] >= s[v + 1])) continue;
            Py_ssize_t lo = v >= 4 ? v - 4 : 0, hi = v + 4 < n ? v + 4 : n - 1;
            double low = s[v];
            for (Py_ssize_t k = lo; k <= hi; k++) low = s[k] < low ? s[k] : low;
            if (!(low <= s[v] * prom)) continue;
            Py_ssize_t a = v >= 2 ? v - 2 : 0, z = v + 2 < n ? v + 2 : n - 1;
            for (Py_ssize_t k = a; k <= z; k++) flags[k] |= LOBE_BIT;
        }
        /* ... in a run of live bins at least noise_run long (the short runs between the
         * decoder's exact zeros are partials, however ragged) */
        Py_ssize_t run_min = (Py_ssize_t)par[RP_NOISE_RUN];
        for (Py_ssize_t i = 0; i < m;) {
            Py_ssize_t j = i;
            while (j < m && (flags[E[j]] & 1) && (j == i || E[j] == E[j - 1] + 1)) j++;
            if (j == i) { i++; continue; }
            if (j - i < run_min)
                for (Py_ssize_t k = i; k < j; k++) flags[E[k]] |= LOBE_BIT;
            i = j;
        }
        double gain = par[RP_NOISE_GAIN];
        Py_ssize_t last = -2, count = 0, seg = (Py_ssize_t)par[RP_NOISE_SEG];
        double delta = -1.0;
        for (Py_ssize_t i = 0; i < m; i++) {
            Py_ssize_t v = E[i];
            if (!(flags[v] & 1) || (flags[v] & LOBE_BIT)) continue;
            root[v] = v;
            tg[v] = plus[v];
            double ph = phase[v] + 0.5 * (ptg[v] + tg[v]);
            if (quad && last == v - 1) {
                double want = new_phase[v - 1] + (((v - 1) & 1) ? 0.75 * M_PI : -0.25 * M_PI);
                if (delta < 0.0) {
                    double q = rint((ph - want) / (0.5 * M_PI));
                    delta = fmod(q, 4.0);
                    if (delta < 0.0) delta += 4.0;
                    count = 0;
                } else if (seg > 0 && ++count % seg == 0) {
                    delta = fmod(delta + 1.0, 4.0);
                }
                ph = want + delta * (0.5 * M_PI);
            } else {
                delta = -1.0;
            }
            last = v;
            new_phase[v] = ph;
            emit_mag[v] = s[v] * gain;
            flags[v] |= NOISE_BIT;
        }
    }
    /* the other bins at their own bin frequency on a held frame (made their own roots by the
     * broad-run rule; not a peak): the same quadrature pattern along their runs, and the same
     * gain */
    if (held && par[RP_PATTERN_ALL] != 0.0) {
        Py_ssize_t last = -2, count = 0, seg = (Py_ssize_t)par[RP_NOISE_SEG];
        double delta = -1.0;
        for (Py_ssize_t i = 0; i < m; i++) {
            Py_ssize_t v = E[i];
            if (root[v] != v || tg[v] != plus[v] || (flags[v] & (1 | NOISE_BIT)) != 1) continue;
            if (v > 0 && v < n - 1 && s[v] > s[v - 1] && s[v] >= s[v + 1]) continue;
            double ph = new_phase[v];
            if (quad && last == v - 1) {
                double want = new_phase[v - 1] + (((v - 1) & 1) ? 0.75 * M_PI : -0.25 * M_PI);
                if (delta < 0.0) {
                    double q = rint((ph - want) / (0.5 * M_PI));
                    delta = fmod(q, 4.0);
                    if (delta < 0.0) delta += 4.0;
                    count = 0;
                } else if (seg > 0 && ++count % seg == 0) {
                    delta = fmod(delta + 1.0, 4.0);
                }
                new_phase[v] = want + delta * (0.5 * M_PI);
            } else {
                delta = -1.0;
            }
            last = v;
            emit_mag[v] = s[v] * par[RP_NOISE_GAIN];
            flags[v] |= NOISE_BIT;
        }
    }
    /* partials (every frame): each peak that roots its lobe runs on at the frequency of the
     * parabola through the log magnitudes of its bin and its neighbours (floored 60 dB below
     * it) instead of the Gaussian-slope estimate, which decoded lobes (flatter or skewed, not
     * Gaussian) bias by up to a few tenths of a bin; the lobe follows it (steady path) */
    if (par[RP_PEAK_FREQ] != 0.0) {
        double step = plus[1] - plus[0];
        for (Py_ssize_t i = 0; i < m; i++) {
            Py_ssize_t v = E[i];
            if (v == 0 || v == n - 1 || root[v] != v || (flags[v] & (1 | NOISE_BIT)) != 1) continue;
            double a = s[v - 1], c = s[v], g = s[v + 1];
            if (!(c > a && c >= g)) continue;
            /* a peak with another within 2 bins (a lobe with two maxima) keeps its estimate */
            if ((v >= 2 && root[v - 2] == v - 2 && s[v - 2] > s[v - 3 >= 0 ? v - 3 : 0] && s[v - 2] >= a) ||
                (v + 2 < n && root[v + 2] == v + 2 && s[v + 2] > g && (v + 3 >= n || s[v + 2] >= s[v + 3])))
                continue;
            double fl = c * par[RP_PEAK_FLOOR];
            double la = log(a > fl ? a : fl), lc = log(c), lg = log(g > fl ? g : fl);
            double den = (la - 2.0 * lc) + lg;
            if (!(den < 0.0)) continue;
            /* a lobe as curved as a Hann main lobe (an exact sinusoid's: the slope estimate is
             * good there) and a refit within peak_min of a bin keep the estimate */
            if (den <= -par[RP_HANN_LO] && den >= -par[RP_HANN_HI]) continue;
            double t = plus[v] + step * (0.5 * (la - lg) / den);
            if (fabs(t - tg[v]) > step * par[RP_PEAK_MIN]) tg[v] = t;
        }
    }
    memcpy(phase, new_phase, n * sizeof(double));
}

/* rtpghi_next(magnitude, phase, tgrad, prev_tgrad, tgrad_plus, slog3, prev_mag, fgrad, root,
 *             random, lobe_table, scratch_f32, scratch_f64, scratch_i64, flags, state, params,
 *             emit_mag, changed) -> the magnitude distance u of an abrupt change, else None.
 * emit_mag: the magnitude to emit (the frame, noise-band bins noise_gain louder); kept while
 * the frame is held.
 * slog3: log s at n-2, n-1, n (3 rows); scratch_f32: 3n; scratch_f64: 4n; scratch_i64: 2n. */
static PyObject *rtpghi_next(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    static const char *fn = "rtpghi_next";
    if (check_nargs(fn, nargs, 19) < 0) return NULL;
    Py_ssize_t n = f64_len(fn, args[0], "magnitude");
    if (n < 0) return NULL;
    if (n < 2) {
        PyErr_Format(PyExc_ValueError, "%s: the frame needs at least 2 bins", fn);
        return NULL;
    }
    int changed = PyObject_IsTrue(args[18]);
    if (changed < 0) return NULL;
    const spec_t spec[] = {
        {"magnitude", F64, n, 0},   {"phase", F64, n, 1},         {"tgrad", F64, n, 1},
        {"prev_tgrad", F64, n, 1},  {"tgrad_plus", F64, n, 0},    {"slog3", F64, 3 * n, 1},
        {"prev_mag", F64, n, 1},    {"fgrad", F64, n, 1},         {"root", I64, n, 1},
        {"random", F64, -1, 0},     {"lobe_table", F64, n + 1, 0}, {"scratch_f32", F32, 3 * n, 1},
        {"scratch_f64", F64, 4 * n, 1}, {"scratch_i64", I64, 2 * n, 1}, {"flags", U8, n, 1},
        {"state", F64, RS_N, 1},    {"params", F64, RP_N, 0},  {"emit_mag", F64, n, 1},
    };
    bufs_t b;
    if (get_bufs(fn, args, spec, 18, &b) < 0) return NULL;
    Py_ssize_t n_random = b.v[9].len / 8;
    if (n_random <= n) {
        release(&b);
        PyErr_Format(PyExc_ValueError, "%s: random needs more than %zd elements", fn, n);
        return NULL;
    }
    const double *mag = D(0), *plus = D(4), *random = D(9), *lobe_table = D(10), *par = D(16);
    double *phase = D(1), *tg = D(2), *ptg = D(3), *slog3 = D(5), *pm = D(6), *fg = D(7), *sf = D(12),
           *state = D(15);
    int64_t *root = L(8), *si = L(13);
    float *s32 = F(11);
    uint8_t *flags = U(14);
    double *h0 = slog3, *h1 = slog3 + n, *slog = slog3 + 2 * n;
    double u_abrupt = NAN;

    if (!(state[RS_RANDOM_AT] >= 0.0 && state[RS_RANDOM_AT] < (double)n_random)) state[RS_RANDOM_AT] = 0.0;
    state[RS_STEADY] = changed ? 0.0 : state[RS_STEADY] + 1.0;
    if (state[RS_STEADY] >= 2.0) {
        for (Py_ssize_t v = 0; v < n; v++)
            if (root[v] < 0 || root[v] >= n) {
                release(&b);
                PyErr_Format(PyExc_ValueError, "%s: root[%zd] = %lld is not a bin", fn, v, (long long)root[v]);
                return NULL;
            }
        /* the same frame three times: every bin takes its root's time-integrated phase */
        for (Py_ssize_t v = 0; v < n; v++) sf[v] = phase[root[v]] + tg[root[v]];
        memcpy(phase, sf, n * sizeof(double));
        release(&b);
        Py_RETURN_NONE;
    }
    int abrupt = 0;
    double top;
    if (changed) {
        double pa = state[RS_POWER], pb, pab;
        {
            /* four partial sums (NumPy's dot sums in blocks too; the order differs by rounding) */
            double b4[4] = {0.0, 0.0, 0.0, 0.0}, c4[4] = {0.0, 0.0, 0.0, 0.0};
            Py_ssize_t v = 0;
            for (; v + 4 <= n; v += 4)
                for (int j = 0; j < 4; j++) {
                    b4[j] += mag[v + j] * mag[v + j];
                    c4[j] += pm[v + j] * mag[v + j];
                }
            for (; v < n; v++) {
                b4[0] += mag[v] * mag[v];
                c4[0] += pm[v] * mag[v];
            }
            pb = (b4[0] + b4[1]) + (b4[2] + b4[3]);
            pab = (c4[0] + c4[1]) + (c4[2] + c4[3]);
        }
        state[RS_POWER] = pb;
        if (pa > 0.0 && pb > 0.0) {
            double u = 1.0 - pab / sqrt(pa * pb);
            abrupt = u > par[RP_JUMP];
            if (abrupt) u_abrupt = u;
        }
        memcpy(ptg, tg, n * sizeof(double));
        top = log_tgrad(mag, n, slog, tg, plus, par[RP_FLOOR], par[RP_TMUL], par[RP_CURV], par[RP_ONE_SIDED] != 0.0);
        state[RS_TOP] = top;
    } else {
        memcpy(ptg, tg, n * sizeof(double));
        top = np_amax(mag, n);
    }
    /* causal 2nd-order difference in time on logs floored at one level for all three frames */
    double lf = py_max(py_max(py_max(state[RS_TOP], state[RS_TOP0]), state[RS_TOP1]), 1e-30);
    lf = log(lf * par[RP_FLOOR]);
    if (abrupt) {
        memcpy(h0, slog, n * sizeof(double));
        memcpy(h1, slog, n * sizeof(double));
    }
    double itop = py_max(py_max(top, state[RS_PREV_TOP]), 1e-30);
    rtpghi_integrate(n, mag, pm, phase, tg, ptg, plus, fg, slog, h0, h1, lf, root, random, n_random, lobe_table,
                     s32, s32 + n, s32 + 2 * n, sf, sf + n, sf + 2 * n, sf + 3 * n, si, si + n, flags, state, par,
                     itop, D(17));
    memcpy(h0, h1, n * sizeof(double));
    memcpy(h1, slog, n * sizeof(double));
    state[RS_TOP0] = state[RS_TOP1];
    state[RS_TOP1] = state[RS_TOP];
    state[RS_PREV_TOP] = top;
    memcpy(pm, mag, n * sizeof(double));
    release(&b);
    if (abrupt) return PyFloat_FromDouble(u_abrupt);
    Py_RETURN_NONE;
}


/* ---- pitch: peaks, the cosine-comb periodicity of candidates, the least-squares refit ----- */

enum { PP_BIN_HZ, PP_FMIN, PP_FMAX, PP_RANGE, PP_MAX_PEAKS, PP_TOL, PP_PERIODIC, PP_APERIODIC, PP_OFF_CLASS,
       PP_SUB_PEAKS, PP_SUBHARMONICS, PP_FIT_H, PP_OFF_GAIN, PP_NOISY, PP_NO_CLASS, PP_NOISY_MARGIN,
       PP_NOISY_DIV, PP_WEAK, PP_REACH_LO, PP_FORCE_D, PP_AMBIG_D, PP_N };
#define PITCH_MAX_PEAKS 64
#define PITCH_MAX_CANDS 256

/* The frame's peaks (pitch.PitchEstimator.peaks): local maxima (above the bin below, at least
 * the bin above) above top * range, the strongest max_peaks of them (in bin order), their
 * parabolic frequency on the floored log magnitude and their lobe power. Returns the count,
 * 0 for none (also: top not positive and finite). */
static int find_peaks(const double *mag, Py_ssize_t n, const double *par, int64_t *cand, double *freqs, double *power)
{
    if (n < 3) return 0;
    double top = np_amax(mag, n);
    if (!(top > 0.0 && isfinite(top))) return 0;
    double floor = top * par[PP_RANGE];
    Py_ssize_t count = 0;
    for (Py_ssize_t v = 1; v < n - 1; v++) {
        double m = mag[v];
        if (m > floor && m > mag[v - 1] && m >= mag[v + 1]) cand[count++] = v;
    }
    Py_ssize_t keep = (Py_ssize_t)par[PP_MAX_PEAKS];
    if (count > keep) {
        /* the strongest `keep`: the keep-th largest magnitude by selection, then those above it
         * and, of those equal to it, the lowest bins (np.argpartition leaves ties unspecified) */
        Py_ssize_t lo = 0, hi = count - 1, k = keep - 1; /* k-th largest, 0-based, in a copy */
        int64_t *w = cand + count;                       /* the second half of the scratch */
        memcpy(w, cand, count * sizeof(int64_t));
        while (lo < hi) {
            double pivot = mag[w[(lo + hi) / 2]];
            Py_ssize_t i = lo, j = hi;
            while (i <= j) {
                while (mag[w[i]] > pivot) i++;
                while (mag[w[j]] < pivot) j--;
                if (i <= j) {
                    int64_t t = w[i]; w[i] = w[j]; w[j] = t;
                    i++; j--;
                }
            }
            if (k <= j) hi = j;
            else if (k >= i) lo = i;
            else break;
        }
        double kth = mag[w[k]];
        Py_ssize_t above = 0;
        for (Py_ssize_t i = 0; i < count; i++) above += mag[cand[i]] > kth;
        Py_ssize_t ties = keep - above, out = 0;
        for (Py_ssize_t i = 0; i < count; i++) {
            double m = mag[cand[i]];
            if (m > kth || (m == kth && ties-- > 0)) cand[out++] = cand[i];
        }
        count = out;
    }
    double lfloor = floor * 1e-2, bin_hz = par[PP_BIN_HZ];
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_ssize_t v = cand[i];
        double a = mag[v - 1], b = mag[v], g = mag[v + 1];
        power[i] = a * a + b * b + g * g;
        double la = log(np_max(a, lfloor)), lb = log(np_max(b, lfloor)), lg = log(np_max(g, lfloor));
        double num = la * 0.5 - lg * 0.5;
        double den = (la - 2.0 * lb) + lg;
        double f = num / den * bin_hz;
        freqs[i] = f + (double)v * bin_hz;
    }
    return (int)count;
}

/* sin and cos of 0 <= x < 2^20 together, within ~1 ulp: Cody-Waite reduction by pi/2 (fdlibm's
 * 33 + 53 bit split: n * PIO2_1 is exact for n < 2^20) and fdlibm's kernel polynomials on
 * [-pi/4, pi/4]. The candidate scoring evaluates ~2 300 of these per frame; libm's sincos costs
 * about twice as much, and this one gives the same bits on every platform. */
static inline void sin_cos(double x, double *s_out, double *c_out)
{
    static const double INVPIO2 = 6.36619772367581382433e-01, PIO2_1 = 1.57079632673412561417e+00,
                        PIO2_1T = 6.07710050650619224932e-11;
    static const double S1 = -1.66666666666666324348e-01, S2 = 8.33333333332248946124e-03,
                        S3 = -1.98412698298579493134e-04, S4 = 2.75573137070700676789e-06,
                        S5 = -2.50507602534068634195e-08, S6 = 1.58969099521155010221e-10;
    static const double C1 = 4.16666666666666019037e-02, C2 = -1.38888888888741095749e-03,
                        C3 = 2.48015872894767294178e-05, C4 = -2.75573143513906633035e-07,
                        C5 = 2.08757232129817482790e-09, C6 = -1.13596475577881948265e-11;
    double fn = rint(x * INVPIO2);
    double r = (x - fn * PIO2_1) - fn * PIO2_1T;
    double z = r * r;
    double sr = S2 + z * (S3 + z * (S4 + z * (S5 + z * S6)));
    double sn = r + (z * r) * (S1 + z * sr);
    double cr = z * (C1 + z * (C2 + z * (C3 + z * (C4 + z * (C5 + z * C6)))));
    double hz = 0.5 * z, w = 1.0 - hz;
    double cs = w + (((1.0 - w) - hz) + z * cr);
    switch ((int64_t)fn & 3) {
    case 0: *s_out = sn; *c_out = cs; break;
    case 1: *s_out = cs; *c_out = -sn; break;
    case 2: *s_out = -sn; *c_out = -cs; break;
    default: *s_out = -cs; *c_out = sn; break;
    }
}

/* d = (total - sum P cos x) / max(total - sum P sin(x)/x, 1e-300), x = 2 pi f / candidate */
static double periodicity1(const double *freqs, const double *power, int np_, double total, double cand)
{
    double w = (2.0 * M_PI) / cand, sc = 0.0, ss = 0.0;
    for (int p = 0; p < np_; p++) {
        double x = w * freqs[p], sx, cx;
        if (x >= 0.0 && x < 1048576.0) sin_cos(x, &sx, &cx);
        else { sx = sin(x); cx = cos(x); }
        sc += cx * power[p];
        ss += sx / x * power[p];
    }
    return (total - sc) / np_max(total - ss, 1e-300);
}

/* The highest candidate with d < periodic, else the first lowest d (NaN first, as np.argmin);
 * its d in *d_best. Evaluated from the highest candidate down, so the search stops at the first
 * periodic one: the same choice as scoring every candidate first. */
static int score_and_pick(const double *freqs, const double *power, int np_, double total, const double *cands,
                          int nc, double periodic, double *d, double *d_best)
{
    for (int c = nc - 1; c >= 0; c--) {
        d[c] = periodicity1(freqs, power, np_, total, cands[c]);
        if (d[c] < periodic) {
            *d_best = d[c];
            return c;
        }
    }
    int best = 0;
    for (int c = 1; c < nc; c++) {
        if (d[best] != d[best]) break;
        if (d[c] < d[best] || d[c] != d[c]) best = c;
    }
    *d_best = d[best];
    return best;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* weighted least squares of f ~ h f0 over the peaks near a harmonic h <= fit_h of candidate f;
 * 0 when no peak is near one */
static double refine_f0(const double *freqs, const double *power, int np_, const double *par, double f)
{
    double inv = 1.0 / f, slack = 0.5 * par[PP_BIN_HZ] / f, den = 0.0, numer = 0.0;
    for (int p = 0; p < np_; p++) {
        double r = freqs[p] * inv, h = rint(r);
        int on = fabs(r - h) <= np_max(h * par[PP_TOL], slack) && h <= par[PP_FIT_H];
        double w = power[p] * (double)on;
        w = w * h;
        den += w * h;
        numer += w * freqs[p];
    }
    if (!(den > 0.0)) return 0.0;
    double f0 = numer / den;
    return isfinite(f0) && f0 > 0.0 ? f0 : 0.0;
}

/* pitch_estimate(magnitude, octaves or None, peak_tmp, params) -> (f0 in Hz, d) or None.
 * d: the normalised difference of the chosen candidate (0 periodic ... ~1 noise). With the
 * octaves of the pitch class: the best octave, unless it scores d > off_class and an f0 off
 * the class scores below off_gain times its d; an octave with d > noisy is returned as it is
 * (no refit: the peaks of a noise-like frame pull the fit anywhere) up to d = no_class (beyond:
 * noise, None). */
static PyObject *pitch_estimate(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    static const char *fn = "pitch_estimate";
    if (check_nargs(fn, nargs, 4) < 0) return NULL;
    Py_ssize_t n = f64_len(fn, args[0], "magnitude");
    if (n < 0) return NULL;
    PyObject *oct = args[1];
    const spec_t spec[] = {{"magnitude", F64, n, 0}, {"peak_tmp", I64, 2 * n, 1}, {"params", F64, PP_N, 0},
                           {"octaves", F64, -1, 0}};
    PyObject *a4[4] = {args[0], args[2], args[3], oct};
    bufs_t b;
    if (get_bufs(fn, a4, spec, oct == Py_None ? 3 : 4, &b) < 0) return NULL;
    const double *mag = D(0), *par = D(2);
    if (!(par[PP_MAX_PEAKS] >= 1 && par[PP_MAX_PEAKS] <= PITCH_MAX_PEAKS && par[PP_SUB_PEAKS] >= 1 &&
          par[PP_SUBHARMONICS] >= 1 && par[PP_SUB_PEAKS] * par[PP_SUBHARMONICS] <= PITCH_MAX_CANDS) ||
        (oct != Py_None && b.v[3].len / 8 > PITCH_MAX_CANDS)) {
        release(&b);
        PyErr_Format(PyExc_ValueError, "%s: parameters out of range", fn);
        return NULL;
    }
    double freqs[PITCH_MAX_PEAKS], power[PITCH_MAX_PEAKS], cands[PITCH_MAX_CANDS], d[PITCH_MAX_CANDS],
        d_oct[PITCH_MAX_CANDS];
    int np_ = find_peaks(mag, n, par, L(1), freqs, power);
    double total = 0.0;
    for (int p = 0; p < np_; p++) total += power[p];
    if (!np_ || !(total > 0.0)) goto none;
    int nc = 0, best_oct = 0;
    double f_in = 0.0, d_in = NAN;
    if (oct != Py_None) {
        nc = (int)(b.v[3].len / 8);
        if (nc) {
            for (int c = 0; c < nc; c++) d_oct[c] = NAN;
            best_oct = score_and_pick(freqs, power, np_, total, D(3), nc, par[PP_PERIODIC], d_oct, &d_in);
            f_in = D(3)[best_oct];
        }
    }
    int use_in = nc > 0;
    double f = f_in, d_best = d_in;
    if (!nc || d_in > par[PP_OFF_CLASS]) {
        /* every f0 the strongest peaks imply: each of them / 1 ... subharmonics, ascending */
        int ns = (int)par[PP_SUB_PEAKS], nh = (int)par[PP_SUBHARMONICS];
        int strong[PITCH_MAX_PEAKS], n_strong = 0;
        if (np_ > ns) {
            uint8_t taken[PITCH_MAX_PEAKS] = {0};
            for (int k = 0; k < ns; k++) {
                int m = -1;
                for (int p = 0; p < np_; p++)
                    if (!taken[p] && (m < 0 || power[p] > power[m])) m = p;
                taken[m] = 1;
                strong[n_strong++] = m;
            }
        } else {
            for (int p = 0; p < np_; p++) strong[n_strong++] = p;
        }
        int ncs = 0;
        for (int k = 0; k < n_strong; k++)
            for (int h = 1; h <= nh; h++) {
                double c = freqs[strong[k]] * (1.0 / (double)h);
                if (c >= par[PP_FMIN] && c <= par[PP_FMAX]) cands[ncs++] = c;
            }
        if (ncs) {
            qsort(cands, ncs, sizeof(double), cmp_double);
            double d_off = NAN;
            int best = score_and_pick(freqs, power, np_, total, cands, ncs, par[PP_PERIODIC], d, &d_off);
            if (!use_in || d_off < par[PP_OFF_GAIN] * d_in) {
                use_in = 0;
                f = cands[best];
                d_best = d_off;
            }
        } else if (!use_in) {
            goto none;
        }
    }
    if (use_in) {
        if (d_best > par[PP_NOISY] || !(d_best == d_best)) goto class_octave;
        /* a weak series below the reach band: the octave above, when it scores within
         * noisy_margin, as it is and with the emphasis at full (d at least force_d) */
        if (d_best > par[PP_WEAK] && f_in < par[PP_REACH_LO] && best_oct + 1 < nc &&
            d_oct[best_oct + 1] <= d_in + par[PP_NOISY_MARGIN]) {
            double f_up = D(3)[best_oct + 1], d_up = py_max(d_oct[best_oct + 1], par[PP_FORCE_D]);
            release(&b);
            return Py_BuildValue("(dd)", f_up, d_up);
        }
    } else if (!(d_best <= par[PP_APERIODIC])) {
        if (nc) goto class_octave;
        goto none;
    }
    {
        double f0 = refine_f0(freqs, power, np_, par, f);
        /* octave-ambiguous: the octave below fits better still (its partials are there, odd
         * ones weak but not gone; a tracker may hear either once the note is moved far): d at
         * least ambig_d, so that the emphasis settles it */
        if (f0 > 0.0 && use_in && best_oct > 0 && par[PP_AMBIG_D] > 0.0) {
            double d_below = periodicity1(freqs, power, np_, total, D(3)[best_oct - 1]);
            if (d_below < d_best) d_best = py_max(d_best, par[PP_AMBIG_D]);
        }
        if (f0 > 0.0) {
            release(&b);
            return Py_BuildValue("(dd)", f0, d_best);
        }
        if (!nc) goto none;
    }
class_octave:
    /* the pitch class is known and the frame is noise-like: of the octaves scoring within
     * noisy_margin of the best, the one nearest (in octaves) to the power-weighted median
     * frequency of the peaks / noisy_div (the energy at harmonics 2-4: the emphasis then
     * builds the note from where the breath is), as it is */
    if (!(d_in <= par[PP_NO_CLASS]) || !(f_in > 0.0)) goto none;
    {
        double half = 0.5 * total, acc = 0.0, med = freqs[np_ - 1];
        for (int p = 0; p < np_; p++) {
            acc += power[p];
            if (acc >= half) { med = freqs[p]; break; }
        }
        for (int c = 0; c < nc; c++) /* the octaves the periodic search did not score */
            if (d_oct[c] != d_oct[c]) d_oct[c] = periodicity1(freqs, power, np_, total, D(3)[c]);
        double goal = log2(med / par[PP_NOISY_DIV]), best_dist = INFINITY;
        double f_pick = f_in, d_pick = d_in;
        for (int c = 0; c < nc; c++) {
            if (!(d_oct[c] <= d_in + par[PP_NOISY_MARGIN])) continue;
            double dist = fabs(log2(D(3)[c]) - goal);
            if (dist < best_dist) { best_dist = dist; f_pick = D(3)[c]; d_pick = d_oct[c]; }
        }
        release(&b);
        return Py_BuildValue("(dd)", f_pick, d_pick);
    }
none:
    release(&b);
    Py_RETURN_NONE;
}

/* pitch_peaks(magnitude, peak_tmp, params, freqs_out, power_out) -> count */
static PyObject *pitch_peaks(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    static const char *fn = "pitch_peaks";
    if (check_nargs(fn, nargs, 5) < 0) return NULL;
    Py_ssize_t n = f64_len(fn, args[0], "magnitude");
    if (n < 0) return NULL;
    const spec_t spec[] = {{"magnitude", F64, n, 0}, {"peak_tmp", I64, 2 * n, 1}, {"params", F64, PP_N, 0},
                           {"freqs", F64, -1, 1}, {"power", F64, -1, 1}};
    bufs_t b;
    if (get_bufs(fn, args, spec, 5, &b) < 0) return NULL;
    const double *par = D(2);
    if (!(par[PP_MAX_PEAKS] >= 1 && par[PP_MAX_PEAKS] <= PITCH_MAX_PEAKS && b.v[3].len / 8 >= par[PP_MAX_PEAKS] &&
          b.v[4].len / 8 >= par[PP_MAX_PEAKS])) {
        release(&b);
        PyErr_Format(PyExc_ValueError, "%s: freqs and power need max_peaks (<= %d) elements", fn, PITCH_MAX_PEAKS);
        return NULL;
    }
    int count = find_peaks(D(0), n, par, L(1), D(3), D(4));
    release(&b);
    return PyLong_FromLong(count);
}


/* ---- shaping: peak-locked transpose (shaping.SpectralShaper) ----------------------------- */

enum { SP_ACTIVE, SP_PARABOLA, SP_LOBE, SP_PROMINENCE, SP_WIDTH, SP_FORMANTS, SP_N };
enum { SI_KIND, SI_NL, SI_NPK, SI_NTONAL, SI_POS_LAST, SI_ACT_FIRST, SI_ACT_LAST, SI_J0, SI_J1, SI_HAS_NOISE,
       SI_ARGMAX, SI_N };
enum { K_PASS, K_SILENT, K_AXIS, K_PEAKS };

/* workspace layout: float64 rows of n (R2, D, posb, ma, w, val, pos, pv, lpv, e_in, e, nontonal),
 * then cost (n + 1), noise (n + 2), power (n + 2); int64 rows act, rid, tgt, pk, then sf and st
 * (n + 1 each) */
#define WS_F64(n) (12 * (n) + 3 * ((n) + 2))
#define WS_I64(n) (4 * (n) + 2 * ((n) + 1))

typedef struct {
    double *R2, *D, *posb, *ma, *w, *val, *pos, *pv, *lpv, *e_in, *e, *nontonal, *cost, *noise, *power;
    int64_t *act, *rid, *tgt, *pk, *sf, *st;
} shape_ws;

static void shape_layout(shape_ws *ws, double *f, int64_t *i, Py_ssize_t n)
{
    ws->R2 = f; ws->D = f + n; ws->posb = f + 2 * n; ws->ma = f + 3 * n; ws->w = f + 4 * n; ws->val = f + 5 * n;
    ws->pos = f + 6 * n; ws->pv = f + 7 * n; ws->lpv = f + 8 * n; ws->e_in = f + 9 * n; ws->e = f + 10 * n;
    ws->nontonal = f + 11 * n; ws->cost = f + 12 * n; ws->noise = ws->cost + (n + 1); ws->power = ws->noise + (n + 2);
    ws->act = i; ws->rid = i + n; ws->tgt = i + 2 * n; ws->pk = i + 3 * n; ws->sf = i + 4 * n; ws->st = ws->sf + (n + 1);
}

/* np.interp(x, xp, fp) for ascending xp (len >= 1): fp[0] / fp[-1] outside, else the slope
 * form NumPy evaluates, fp[j] where x == xp[j] */
static double np_interp(double x, const double *xp, const double *fp, Py_ssize_t len)
{
    if (!(x <= xp[len - 1])) return x != x ? x : fp[len - 1];
    if (x < xp[0]) return fp[0];
    if (len == 1) return fp[0];
    Py_ssize_t lo = 0, hi = len - 1; /* xp[lo] <= x < xp[hi] or x == xp[len-1] */
    if (x == xp[len - 1]) return fp[len - 1];
    while (hi - lo > 1) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (xp[mid] <= x) lo = mid;
        else hi = mid;
    }
    if (xp[lo] == x) return fp[lo];
    double slope = (fp[lo + 1] - fp[lo]) / (xp[lo + 1] - xp[lo]);
    double r = slope * (x - xp[lo]) + fp[lo];
    if (r != r) {
        r = slope * (x - xp[lo + 1]) + fp[lo + 1];
        if (r != r && fp[lo] == fp[lo + 1]) r = fp[lo];
    }
    return r;
}

/* shape_analyse(magnitude, pad, ws_f64, ws_i64, info, params): everything of a frame that does
 * not depend on the transpose (SpectralShaper._analyse); the frame is copied into pad[2:n+2]. */
static PyObject *shape_analyse(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    static const char *fn = "shape_analyse";
    if (check_nargs(fn, nargs, 6) < 0) return NULL;
    Py_ssize_t n = f64_len(fn, args[0], "magnitude");
    if (n < 0) return NULL;
    if (n < 1) {
        PyErr_Format(PyExc_ValueError, "%s: empty frame", fn);
        return NULL;
    }
    const spec_t spec[] = {{"magnitude", F64, n, 0}, {"pad", F64, n + 4, 1}, {"ws_f64", F64, WS_F64(n), 1},
                           {"ws_i64", I64, WS_I64(n), 1}, {"info", F64, SI_N, 1}, {"params", F64, SP_N, 0}};
    bufs_t b;
    if (get_bufs(fn, args, spec, 6, &b) < 0) return NULL;
    const double *mag = D(0), *par = D(5);
    double *pad = D(1), *info = D(4);
    shape_ws ws;
    shape_layout(&ws, D(2), L(3), n);
    pad[0] = pad[1] = pad[n + 2] = pad[n + 3] = 0.0;
    memcpy(pad + 2, mag, n * sizeof(double));
    const double *m = pad + 2;
    /* the first maximum, or the first NaN (np.argmax) */
    Py_ssize_t im = 0;
    for (Py_ssize_t k = 0; k < n + 4; k++) {
        if (pad[k] != pad[k]) { im = k; break; }
        if (pad[k] > pad[im]) im = k;
    }
    double top = pad[im];
    info[SI_ARGMAX] = (double)im;
    info[SI_HAS_NOISE] = 0.0;
    if (!isfinite(top)) { info[SI_KIND] = K_PASS; goto done; }
    if (!(top > 0.0)) { info[SI_KIND] = K_SILENT; goto done; }
    {
        double thr = top * par[SP_ACTIVE];
        /* live bins: above the floor, or right after such a bin */
        Py_ssize_t nl = 0, npk = 0;
        for (Py_ssize_t k = 0; k < n; k++) {
            if (m[k] > thr || (k > 0 && m[k - 1] > thr)) ws.act[nl++] = k;
        }
        /* peaks: above the two bins below, at least the two above (np.argmax of the 5 == 2) */
        for (Py_ssize_t i = 0; i < nl; i++) {
            Py_ssize_t k = ws.act[i];
            double c = pad[k + 2];
            if (c > pad[k] && c > pad[k + 1] && c >= pad[k + 3] && c >= pad[k + 4]) ws.pk[npk++] = i;
        }
        if (!npk) {
            memcpy(ws.noise, m, n * sizeof(double));
            ws.noise[n] = ws.noise[n + 1] = 0.0;
            info[SI_J0] = 0.0;
            info[SI_J1] = (double)(n - 1);
            info[SI_HAS_NOISE] = 1.0;
            info[SI_KIND] = K_AXIS;
            goto done;
        }
        /* fractional positions: parabola through the log magnitudes relative to the peak */
        for (Py_ssize_t j = 0; j < npk; j++) {
            Py_ssize_t k = ws.act[ws.pk[j]];
            double pv = pad[k + 2];
            double l0 = log(np_max(pad[k + 1] / pv, par[SP_PARABOLA])), l1 = log(np_max(pad[k + 3] / pv, par[SP_PARABOLA]));
            double den = 2.0 * l0 + 2.0 * l1;
            den = np_min(den, -2e-12);
            double pos = (l0 - l1) / den;
            ws.pos[j] = pos + (double)k;
            ws.pv[j] = pv;
            ws.pk[j] = k; /* from here on: the peak's bin */
        }
        /* regions: bin k belongs to #{j >= 1: pk[j-1] + pk[j] <= 2k} */
        for (Py_ssize_t j = 1; j < npk; j++) ws.sf[j] = ws.pk[j - 1] + ws.pk[j];
        {
            Py_ssize_t j = 0; /* rid */
            for (Py_ssize_t i = 0; i < nl; i++) {
                int64_t a2 = 2 * ws.act[i];
                while (j + 1 < npk && ws.sf[j + 1] <= a2) j++;
                ws.rid[i] = j;
                ws.ma[i] = m[ws.act[i]];
            }
        }
        /* region starts st (live-bin index) and valleys: the magnitude where a region starts
         * (0 after a zero run), 0 past the last */
        for (Py_ssize_t j = 0; j < npk; j++) { ws.e_in[j] = 0.0; ws.e[j] = 0.0; }
        ws.st[0] = 0;
        for (Py_ssize_t i = 1; i < nl; i++)
            if (ws.rid[i] != ws.rid[i - 1]) ws.st[ws.rid[i]] = i;
        ws.st[npk] = nl;
        for (Py_ssize_t i = 0; i < nl; i++) {
            double a = ws.ma[i];
            ws.e_in[ws.rid[i]] += a * a;
            ws.e[ws.rid[i]] += a; /* s_in */
        }
        int64_t ntonal = 0;
        double first_valley = ws.act[0] == 0 ? ws.ma[0] : 0.0;
        for (Py_ssize_t j = 0; j < npk; j++) {
            Py_ssize_t i0 = ws.st[j], i1 = ws.st[j + 1];
            double sv0 = j == 0 ? first_valley : (ws.act[i0] - ws.act[i0 - 1] == 1 ? ws.ma[i0] : 0.0);
            double sv1 = j + 1 == npk ? 0.0 : (ws.act[i1] - ws.act[i1 - 1] == 1 ? ws.ma[i1] : 0.0);
            double s_in = ws.e[j] * ws.e[j];
            int tonal = s_in <= par[SP_WIDTH] * ws.e_in[j];
            tonal = tonal && np_max(sv0, sv1) <= ws.pv[j] * par[SP_PROMINENCE];
            ntonal += tonal;
            ws.nontonal[j] = tonal ? 0.0 : 1.0;
        }
        /* 2R: twice the log magnitude above the region's floor (>= 0); D: 2R of the bin below
         * (same region, neighbour bin; else 0) - 2R */
        for (Py_ssize_t i = 0; i < nl; i++) {
            int64_t j = ws.rid[i];
            double r2 = ws.ma[i] / (ws.pv[j] * par[SP_LOBE]);
            r2 = log(np_max(r2, 1.0));
            ws.R2[i] = r2 * 2.0;
            ws.posb[i] = ws.pos[j];
        }
        for (Py_ssize_t i = 0; i < nl; i++) {
            int start = i == 0 || ws.rid[i] != ws.rid[i - 1] || ws.act[i] - ws.act[i - 1] != 1;
            ws.D[i] = (start ? 0.0 : ws.R2[i - 1]) - ws.R2[i];
        }
        if (par[SP_FORMANTS] != 0.0)
            for (Py_ssize_t j = 0; j < npk; j++) ws.lpv[j] = log(ws.pv[j]);
        info[SI_NL] = (double)nl;
        info[SI_NPK] = (double)npk;
        info[SI_NTONAL] = (double)ntonal;
        info[SI_POS_LAST] = ws.pos[npk - 1];
        info[SI_ACT_FIRST] = (double)ws.act[0];
        info[SI_ACT_LAST] = (double)ws.act[nl - 1];
        info[SI_KIND] = K_PEAKS;
        if (ntonal < npk) {
            /* noise-like regions are not moved (gain 0) but scaled along the axis */
            for (Py_ssize_t j = 0; j < npk; j++) ws.e_in[j] = ws.e_in[j] * (1.0 - ws.nontonal[j]);
            for (Py_ssize_t k = 0; k < n + 2; k++) ws.noise[k] = 0.0;
            Py_ssize_t j0 = -1, j1 = -1;
            for (Py_ssize_t i = 0; i < nl; i++) {
                double v = ws.ma[i] * ws.nontonal[ws.rid[i]];
                ws.noise[ws.act[i]] = v;
                if (v != 0.0) {
                    if (j0 < 0) j0 = ws.act[i];
                    j1 = ws.act[i];
                }
            }
            if (j0 >= 0) {
                info[SI_J0] = (double)j0;
                info[SI_J1] = (double)j1;
                info[SI_HAS_NOISE] = 1.0;
            }
        }
    }
done:
    release(&b);
    Py_RETURN_NONE;
}

/* out[k] = noise[k c] / sqrt(r), c = 1/r, linear interpolation, over the output bins whose
 * source touches a noise-like bin (SpectralShaper._noise_span); returns the count, k0 in *k0 */
static Py_ssize_t noise_span(const shape_ws *ws, const double *info, Py_ssize_t n, double semitones, double r,
                             int formants, Py_ssize_t *k0_out)
{
    double c = pow(2.0, -semitones / 12.0);
    /* clamped before the conversion (a corrupted info array must not index out of range) */
    double j0d = info[SI_J0] > 0.0 ? (info[SI_J0] < (double)n ? info[SI_J0] : (double)n) : 0.0;
    double j1d = info[SI_J1] > 0.0 ? (info[SI_J1] < (double)n ? info[SI_J1] : (double)n) : 0.0;
    Py_ssize_t j0 = (Py_ssize_t)j0d, j1 = (Py_ssize_t)j1d;
    Py_ssize_t lo_min = j0 - 1 > 0 ? j0 - 1 : 0;
    Py_ssize_t lo_max = j1 < n - 2 ? j1 : n - 2;
    if (lo_max < lo_min) return 0;
    double k0d = ceil((double)lo_min / c);
    Py_ssize_t k0 = k0d < (double)n ? (Py_ssize_t)k0d : n;
    while (k0 > 0 && (Py_ssize_t)((double)(k0 - 1) * c) >= lo_min) k0--;
    while (k0 < n && (Py_ssize_t)((double)k0 * c) < lo_min) k0++;
    double k1d = (double)(lo_max + 1) / c;
    Py_ssize_t k1 = k1d < (double)n ? (Py_ssize_t)k1d : n;
    while (k1 > k0 && (Py_ssize_t)((double)(k1 - 1) * c) > lo_max) k1--;
    while (k1 < n && (Py_ssize_t)((double)k1 * c) <= lo_max) k1++;
    if (k1 <= k0) return 0;
    Py_ssize_t len = lo_max + 2; /* xp = 0 ... lo_max + 1 */
    const double *fp = ws->noise;
    double scale = pow(2.0, -semitones / 24.0);
    int env = formants && (int)info[SI_KIND] == K_PEAKS && info[SI_NPK] >= 1.0 && info[SI_NPK] <= (double)n;
    int npk = env ? (int)info[SI_NPK] : 0;
    for (Py_ssize_t k = k0; k < k1; k++) {
        double x = (double)k * c, v;
        /* np.interp on the unit grid 0 ... len - 1 */
        if (!(x <= (double)(len - 1))) v = fp[len - 1];
        else if (x < 0.0) v = fp[0];
        else {
            Py_ssize_t j = (Py_ssize_t)x;
            if (j >= len - 1 || (double)j == x) v = fp[j];
            else {
                double slope = (fp[j + 1] - fp[j]) / 1.0;
                v = slope * (x - (double)j) + fp[j];
            }
        }
        v = v * scale;
        if (env) {
            double kk = (double)k;
            v = v * exp(np_interp(kk, ws->pos, ws->lpv, npk) - np_interp(kk / r, ws->pos, ws->lpv, npk));
        }
        ws->val[k - k0] = v;
    }
    *k0_out = k0;
    return k1 - k0;
}

/* shape_shift(semitones, frame, ws_f64, ws_i64, info, params, ext): the transposed frame into
 * ext[1:n+1] (ext[0] and ext[n+1] collect what falls below bin 0 / past Nyquist) */
static PyObject *shape_shift(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    static const char *fn = "shape_shift";
    if (check_nargs(fn, nargs, 7) < 0) return NULL;
    double semitones = PyFloat_AsDouble(args[0]);
    if (semitones == -1.0 && PyErr_Occurred()) return NULL;
    Py_ssize_t n = f64_len(fn, args[1], "frame");
    if (n < 0) return NULL;
    if (n < 1) {
        PyErr_Format(PyExc_ValueError, "%s: empty frame", fn);
        return NULL;
    }
    const spec_t spec[] = {{"frame", F64, n, 0}, {"ws_f64", F64, WS_F64(n), 1}, {"ws_i64", I64, WS_I64(n), 1},
                           {"info", F64, SI_N, 0}, {"params", F64, SP_N, 0}, {"ext", F64, n + 2, 1}};
    bufs_t b;
    if (get_bufs(fn, args + 1, spec, 6, &b) < 0) return NULL;
    const double *frame = D(0), *info = D(3), *par = D(4);
    double *ext = D(5), *out = ext + 1;
    shape_ws ws;
    shape_layout(&ws, D(1), L(2), n);
    int kind = info[SI_KIND] >= 0.0 && info[SI_KIND] <= 3.0 ? (int)info[SI_KIND] : K_SILENT;
    int formants = par[SP_FORMANTS] != 0.0;
    int has_noise = info[SI_HAS_NOISE] != 0.0;
    Py_ssize_t k0 = 0, span = 0;
    if (kind == K_PASS) {
        memcpy(out, frame, n * sizeof(double));
        goto done;
    }
    if (kind == K_SILENT) {
        memset(out, 0, n * sizeof(double));
        goto done;
    }
    if (!(fabs(semitones) <= 600.0)) {
        /* beyond +-50 octaves nothing is left in the band (NaN: NaN, for the engine's guard) */
        double fill = semitones != semitones ? semitones : 0.0;
        for (Py_ssize_t k = 0; k < n; k++) out[k] = fill;
        goto done;
    }
    double r = pow(2.0, semitones / 12.0);
    if (kind == K_AXIS || info[SI_NTONAL] == 0.0) {
        memset(out, 0, n * sizeof(double));
        span = noise_span(&ws, info, n, semitones, r, formants, &k0);
        if (span) memcpy(out + k0, ws.val, span * sizeof(double));
        goto done;
    }
    {
        if (!(info[SI_NL] >= 1.0 && info[SI_NL] <= (double)n && info[SI_NPK] >= 1.0 && info[SI_NPK] <= (double)n)) {
            release(&b);
            PyErr_Format(PyExc_ValueError, "%s: info does not describe an analysis of this frame size", fn);
            return NULL;
        }
        Py_ssize_t nl = (Py_ssize_t)info[SI_NL], npk = (Py_ssize_t)info[SI_NPK];
        if (nl > n || npk > n || nl < 1 || npk < 1) {
            release(&b);
            PyErr_Format(PyExc_ValueError, "%s: info does not describe an analysis of this frame size", fn);
            return NULL;
        }
        for (Py_ssize_t i = 0; i < nl; i++)
            if (ws.rid[i] < 0 || ws.rid[i] >= npk || ws.act[i] < 0 || ws.act[i] >= n) {
                release(&b);
                PyErr_Format(PyExc_ValueError, "%s: the workspace does not hold an analysis (run shape_analyse)", fn);
                return NULL;
            }
        double rm1 = r - 1.0;
        for (Py_ssize_t j = 0; j < npk; j++) ws.e[j] = 0.0;
        for (Py_ssize_t i = 0; i < nl; i++) {
            double delta = ws.posb[i] * rm1, f, shift;
            if (rm1 > 0.0) f = modf(delta, &shift);
            else {
                shift = floor(delta);
                f = delta - shift;
            }
            /* the target, one up: index 0 collects what falls below bin 0, n + 1 what passes
             * Nyquist (NumPy: clamped when the lowest / highest region's shift leaves the
             * frame; clamped here always, in double before the conversion: the same targets
             * whenever the NumPy ones are in range) */
            double td = shift + (double)(ws.act[i] + 1);
            if (!(td > 0.0)) td = 0.0;
            if (td > (double)(n + 1)) td = (double)(n + 1);
            ws.tgt[i] = (int64_t)td;
            f = f * ws.D[i];
            f = f + ws.R2[i];
            double w = expm1(f);
            ws.w[i] = w;
            ws.e[ws.rid[i]] += w;
        }
        /* each moved region keeps its energy (noise-like regions: gain 0) */
        for (Py_ssize_t j = 0; j < npk; j++) {
            double g = ws.e_in[j] / np_max(ws.e[j], 1e-300);
            if (formants) g = g * exp(2.0 * (np_interp(ws.pos[j] * r, ws.pos, ws.lpv, npk) - ws.lpv[j]));
            ws.e[j] = g;
        }
        for (Py_ssize_t i = 0; i < nl; i++) ws.w[i] = ws.w[i] * ws.e[ws.rid[i]];
        memset(ext, 0, (n + 2) * sizeof(double));
        if (has_noise) {
            span = noise_span(&ws, info, n, semitones, r, formants, &k0);
            if (span) memcpy(ext + k0 + 1, ws.val, span * sizeof(double));
        }
        if (rm1 >= 0.0) {
            /* upwards the regions move apart: every target is hit once (but the cut-off slot) */
            if (span)
                for (Py_ssize_t i = 0; i < nl; i++) {
                    double v = ext[ws.tgt[i]];
                    ws.w[i] = ws.w[i] + v * v;
                }
            for (Py_ssize_t i = 0; i < nl; i++) ext[ws.tgt[i]] = sqrt(ws.w[i]);
            goto done;
        }
        /* downwards regions can overlap: they add by power */
        double *power = ws.power;
        memset(power, 0, (n + 2) * sizeof(double));
        for (Py_ssize_t i = 0; i < nl; i++) power[ws.tgt[i]] += ws.w[i];
        if (span)
            for (Py_ssize_t k = 0; k < span; k++) {
                double v = ws.val[k];
                power[k0 + 1 + k] += v * v;
                ext[k0 + 1 + k] = sqrt(power[k0 + 1 + k]);
            }
        for (Py_ssize_t i = 0; i < nl; i++) ext[ws.tgt[i]] = sqrt(power[ws.tgt[i]]);
    }
done:
    release(&b);
    Py_RETURN_NONE;
}


/* ---- shaping: harmonic emphasis and the high register (shaping.harmonic_emphasis,
 * shaping.high_register: the NumPy spellings, which benchmarks/shaping_reference.py runs) ---- */

/* emphasis(magnitude, out, f0_bins, beta): out = the frame with a share beta of each harmonic
 * band's power gathered into a Hann lobe at k f0_bins, the rest (and what lies below the first
 * band) scaled by 1 - beta */
static PyObject *emphasis(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    static const char *fn = "emphasis";
    if (check_nargs(fn, nargs, 4) < 0) return NULL;
    Py_ssize_t n = f64_len(fn, args[0], "magnitude");
    if (n < 0) return NULL;
    double f0b = PyFloat_AsDouble(args[2]);
    if (f0b == -1.0 && PyErr_Occurred()) return NULL;
    double beta = PyFloat_AsDouble(args[3]);
    if (beta == -1.0 && PyErr_Occurred()) return NULL;
    const spec_t spec[] = {{"magnitude", F64, n, 0}, {"out", F64, n, 1}};
    bufs_t b;
    if (get_bufs(fn, args, spec, 2, &b) < 0) return NULL;
    const double *m = D(0);
    double *out = D(1);
    Py_ssize_t k_max = 0;
    if (beta > 0.0 && f0b >= 2.0 && isfinite(f0b) && n >= 4) {
        double km = ((double)(n - 3) / f0b) - 0.5;
        k_max = km >= 1.0 ? (Py_ssize_t)km : 0;
    }
    if (k_max < 1) {
        if (out != m) memmove(out, m, n * sizeof(double));
        release(&b);
        Py_RETURN_NONE;
    }
    /* band powers first (out may alias magnitude) */
    Py_ssize_t top_edge = 0;
    double lo_edge = rint(0.5 * f0b);
    Py_ssize_t e0 = lo_edge < (double)n ? (Py_ssize_t)lo_edge : n;
    for (Py_ssize_t v = 0; v < n; v++) out[v] = m[v] * m[v];
    {
        double last = rint(((double)k_max + 0.5) * f0b);
        top_edge = last < (double)n ? (Py_ssize_t)last : n;
    }
    /* energies of bands 1..k_max, then the breath scaled, then the lobes added */
    double energy_stack[4096];
    double *energy = k_max <= 4096 ? energy_stack : NULL;
    if (!energy) {
        release(&b);
        PyErr_Format(PyExc_ValueError, "%s: too many harmonics", fn);
        return NULL;
    }
    Py_ssize_t prev = e0;
    for (Py_ssize_t k = 1; k <= k_max; k++) {
        double ed = rint(((double)k + 0.5) * f0b);
        Py_ssize_t e = ed < (double)n ? (Py_ssize_t)ed : n;
        double sum = 0.0;
        for (Py_ssize_t v = prev; v < e; v++) sum += out[v];
        energy[k - 1] = sum;
        prev = e;
    }
    for (Py_ssize_t v = 0; v < top_edge; v++) out[v] *= 1.0 - beta;
    for (Py_ssize_t k = 1; k <= k_max; k++) {
        double c = (double)k * f0b, lobe[4], le = 0.0;
        Py_ssize_t base = (Py_ssize_t)floor(c);
        for (int j = 0; j < 4; j++) {
            double x = (double)(base - 1 + j) - c;
            double w = fabs(x) < 2.0 ? cos(0.25 * M_PI * x) : 0.0;
            w = w * w;
            lobe[j] = w * w;
            le += lobe[j];
        }
        double a = beta * energy[k - 1] / le;
        for (int j = 0; j < 4; j++) {
            Py_ssize_t v = base - 1 + j;
            if (v >= 0 && v < n) out[v] += a * lobe[j];
        }
    }
    for (Py_ssize_t v = 0; v < n; v++) out[v] = sqrt(out[v]);
    release(&b);
    Py_RETURN_NONE;
}

/* high_register(out, f0_bins, bin_hz, from_hz, corner_hz, corner_harmonics, slope_db): in place */
static PyObject *high_register(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    static const char *fn = "high_register";
    if (check_nargs(fn, nargs, 7) < 0) return NULL;
    Py_ssize_t n = f64_len(fn, args[0], "out");
    if (n < 0) return NULL;
    double v6[6];
    for (int i = 0; i < 6; i++) {
        v6[i] = PyFloat_AsDouble(args[1 + i]);
        if (v6[i] == -1.0 && PyErr_Occurred()) return NULL;
    }
    double f0b = v6[0], bin_hz = v6[1], from_hz = v6[2], corner_hz = v6[3], corner_h = v6[4], slope = v6[5];
    const spec_t spec[] = {{"out", F64, n, 1}};
    bufs_t b;
    if (get_bufs(fn, args, spec, 1, &b) < 0) return NULL;
    double *out = D(0);
    if (f0b * bin_hz >= from_hz && f0b < (double)(n - 3) && f0b >= 2.0) {
        double corner = py_max(corner_hz, corner_h * f0b * bin_hz) / bin_hz;
        double k0d = ceil(corner);
        Py_ssize_t k0 = k0d < (double)n ? (Py_ssize_t)k0d : n;
        double expo = -slope / (20.0 * log10(2.0));
        for (Py_ssize_t k = k0; k < n; k++) out[k] *= pow((double)k / corner, expo);
        double top = np_amax(out, n);
        Py_ssize_t c = (Py_ssize_t)rint(f0b);
        if (out[c] < top) {
            Py_ssize_t base = (Py_ssize_t)floor(f0b);
            for (int j = 0; j < 4; j++) {
                Py_ssize_t v = base - 1 + j;
                double x = (double)v - f0b;
                double w = fabs(x) < 2.0 ? cos(0.25 * M_PI * x) : 0.0;
                double lobe = w * w * top;
                double want = lobe * lobe - out[v] * out[v];
                want = want > 0.0 ? want : 0.0;
                out[v] = sqrt(out[v] * out[v] + want);
            }
        }
    }
    release(&b);
    Py_RETURN_NONE;
}

/* same_bytes(a, b) -> bool: the two float64 arrays hold the same bytes (a.tobytes() == b.tobytes()
 * without the two copies) */
static PyObject *same_bytes(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    static const char *fn = "same_bytes";
    if (check_nargs(fn, nargs, 2) < 0) return NULL;
    const spec_t spec[] = {{"a", F64, -1, 0}, {"b", F64, -1, 0}};
    bufs_t b;
    if (get_bufs(fn, args, spec, 2, &b) < 0) return NULL;
    int same = b.v[0].len == b.v[1].len && memcmp(b.v[0].buf, b.v[1].buf, (size_t)b.v[0].len) == 0;
    release(&b);
    return PyBool_FromLong(same);
}

/* ---- module --------------------------------------------------------------------------- */

static PyMethodDef methods[] = {
    {"emit", (PyCFunction)(void (*)(void))emit, METH_FASTCALL,
     "emit(magnitude, phase, sign, spectrum, gain): spectrum = magnitude*sign*exp(i*float32(phase))*gain"},
    {"affine", (PyCFunction)(void (*)(void))affine, METH_FASTCALL, "affine(x, scale, offset): x = offset + scale*x in place"},
    {"canne_next", (PyCFunction)(void (*)(void))canne_next, METH_FASTCALL, "CannePhase.next's integration step"},
    {"rtpghi_next", (PyCFunction)(void (*)(void))rtpghi_next, METH_FASTCALL, "RTPGHI.next's integration step"},
    {"pitch_estimate", (PyCFunction)(void (*)(void))pitch_estimate, METH_FASTCALL, "PitchEstimator.estimate"},
    {"pitch_peaks", (PyCFunction)(void (*)(void))pitch_peaks, METH_FASTCALL, "PitchEstimator.peaks"},
    {"shape_analyse", (PyCFunction)(void (*)(void))shape_analyse, METH_FASTCALL, "SpectralShaper's frame analysis"},
    {"shape_shift", (PyCFunction)(void (*)(void))shape_shift, METH_FASTCALL, "SpectralShaper's peak-locked shift"},
    {"same_bytes", (PyCFunction)(void (*)(void))same_bytes, METH_FASTCALL, "same_bytes(a, b): a.tobytes() == b.tobytes()"},
    {"emphasis", (PyCFunction)(void (*)(void))emphasis, METH_FASTCALL, "shaping.harmonic_emphasis, into out"},
    {"high_register", (PyCFunction)(void (*)(void))high_register, METH_FASTCALL, "shaping.high_register, in place"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_native",
    "The compiled inner loops of aedaemon.dsp (phase, pitch, shaping); see aedaemon/dsp/_native.c.", -1, methods,
};

PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&module); }
