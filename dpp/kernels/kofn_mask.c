/* Fused DPP k-of-n mask: counter-based Gumbel noise, exact top-k per group, masked weight, and the backward.
 *
 * Called from dpp/fused_mask.py through ctypes on contiguous float32 buffers. Layouts (one layer):
 *   logits, perturbed: (rows, groups, n) slots; slot s = g*n + j of a row; slots s >= real are padding;
 *   weight, out, grads: (rows, real * block) columns; slot s owns columns [s*block, (s+1)*block).
 * (Filter granularity is rows = 1, real = filters, block = a filter's column count.)
 *
 * Forward: perturbed = (s < real ? logit : PAD_LOGIT) + c * gumbel(seed, flat slot index); the mask is the
 * k-hot top-k per group (ties to the lowest slot, as successive torch.argmax); out = weight * mask.
 * Backward (straight-through DPS relaxation): grad_weight = grad_out * mask; per slot G = sum over its block of
 * grad_out * weight; for draw i = 0..k-1 with maximum m_i, e = exp((perturbed - m_i) / T) over the slots not
 * drawn before, grad_logit += e / z * (G - <e, G> / z) / T with z = sum e; pads get 0. These are the formulas
 * of dpp.masks._GumbelTopK.
 *
 * Noise is defined in dpp/noise.py, which the tests compare with this file bit for bit: SplitMix64 words
 * (element i takes the low (i even) or high (i odd) 32 bits of mix(seed + (i/2 + 1) * golden gamma)),
 * u = ((w >> 8) | 1) * 2^-24 in (0, 1), g = -log(-log u) with a table-driven log whose 99 constants the caller
 * passes in (`consts`, dpp.noise.NOISE_CONSTANTS). Every step is an integer operation or one correctly rounded
 * IEEE float operation (compiled with -ffp-contract=off, no -ffast-math), so torch repeats it exactly. The
 * backward has no bitwise definition and may use FMA.
 *
 * The k-of-n selection works on 16-lane vectors (GCC vector extensions; AVX-512 mask registers when
 * available). For n in {2, 4, 8, 16} a vector holds 16/n whole groups; group maxima and sums are butterflies
 * over lane ^ 1, 2, 4, 8 (a fixed order, so results are reproducible). A vector whose draws are not exactly
 * one slot per group (a tie in value) is redone exactly, slot by slot. Other n use a scalar path per group.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE__)
#include <immintrin.h>
#endif
#pragma GCC diagnostic ignored "-Wpsabi" /* 64-byte vectors in static functions only: no ABI is exposed */

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "kofn_mask.c assumes a little-endian machine (the noise words are the halves of 64-bit lanes)"
#endif

#define LANES 16
#define PREFETCH 256 /* floats ahead: software prefetch of the streams (L3 latency is ~40 vectors of work) */
#define PAD_LOGIT (-1.0e4f)
#define LOG_OFFSET 0x3f330000 /* z = x / 2^k in [0x1.66p-1, 0x1.66p0); the table's 32 rows split that range */
#define GAMMA 0x9E3779B97F4A7C15ull
#define MIX1 0xBF58476D1CE4E5B9ull
#define MIX2 0x94D049BB133111EBull

typedef float f32v __attribute__((vector_size(64)));
typedef int32_t i32v __attribute__((vector_size(64)));
typedef uint32_t u32v __attribute__((vector_size(64)));
typedef uint64_t u64v __attribute__((vector_size(64)));

static const i32v LANE = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
static const u64v PAIR_GAMMA = {0, GAMMA, 2 * GAMMA, 3 * GAMMA, 4 * GAMMA, 5 * GAMMA, 6 * GAMMA, 7 * GAMMA};
static const i32v XOR1 = {1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14};
static const i32v XOR2 = {2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13};
static const i32v XOR4 = {4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11};
static const i32v XOR8 = {8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7};

int dpp_kernel_abi(void) { return 3; }

/* ------------------------------------------------------------------------- lane masks and helpers */
#if defined(__AVX512F__)
typedef __mmask16 mask16;
#define M_NONE ((mask16)0)
static inline mask16 m_first(int64_t cnt) { return cnt >= LANES ? (mask16)0xFFFF : (mask16)((1u << cnt) - 1u); }
static inline mask16 m_eq(f32v a, f32v b) { return _mm512_cmp_ps_mask((__m512)a, (__m512)b, _CMP_EQ_OQ); }
static inline mask16 m_ge_i(i32v a, int32_t b) {
    return _mm512_cmpge_epi32_mask((__m512i)a, _mm512_set1_epi32(b));
}
static inline f32v blend(mask16 m, f32v a, f32v b) { return (f32v)_mm512_mask_blend_ps(m, (__m512)b, (__m512)a); }
static inline f32v keep_f(mask16 m, f32v a) { return (f32v)_mm512_maskz_mov_ps(m, (__m512)a); }
static inline int m_count(mask16 m) { return __builtin_popcount((unsigned)m); }
static inline int m_test(mask16 m, int lane) { return (m >> lane) & 1; }
static inline mask16 m_bit(int lane) { return (mask16)(1u << lane); }
static inline f32v load_n(const float *p, int64_t cnt) { return (f32v)_mm512_maskz_loadu_ps(m_first(cnt), p); }
static inline void store_n(float *p, f32v v, int64_t cnt) { _mm512_mask_storeu_ps(p, m_first(cnt), (__m512)v); }
static inline f32v max_f(f32v a, f32v b) { return (f32v)_mm512_max_ps((__m512)a, (__m512)b); }
static inline f32v recip(f32v z) { /* 14-bit estimate and one Newton step: about 2^-23 relative */
    __m512 r = _mm512_rcp14_ps((__m512)z);
    return (f32v)_mm512_mul_ps(r, _mm512_sub_ps(_mm512_set1_ps(2.0f), _mm512_mul_ps((__m512)z, r)));
}
#else
typedef i32v mask16; /* -1 / 0 per lane */
#define M_NONE ((mask16){0})
static inline mask16 m_first(int64_t cnt) { return LANE < (int32_t)cnt; }
static inline mask16 m_eq(f32v a, f32v b) { return a == b; }
static inline mask16 m_ge_i(i32v a, int32_t b) { return a >= b; }
static inline f32v blend(mask16 m, f32v a, f32v b) { return (f32v)((m & (i32v)a) | (~m & (i32v)b)); }
static inline f32v keep_f(mask16 m, f32v a) { return (f32v)(m & (i32v)a); }
static inline int m_count(mask16 m) {
    int c = 0;
    for (int j = 0; j < LANES; j++) c += m[j] != 0;
    return c;
}
static inline int m_test(mask16 m, int lane) { return m[lane] != 0; }
static inline mask16 m_bit(int lane) { return LANE == lane; }
static inline f32v load_n(const float *p, int64_t cnt) {
    f32v v = {0};
    if (cnt >= LANES) memcpy(&v, p, sizeof v);
    else for (int64_t j = 0; j < cnt; j++) v[j] = p[j];
    return v;
}
static inline void store_n(float *p, f32v v, int64_t cnt) {
    if (cnt >= LANES) memcpy(p, &v, sizeof v);
    else for (int64_t j = 0; j < cnt; j++) p[j] = v[j];
}
static inline f32v max_f(f32v a, f32v b) { return blend(a > b, a, b); }
static inline f32v recip(f32v z) { return 1.0f / z; }
#endif

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* group maximum and sum, broadcast to every lane of each group of n lanes (n in {2, 4, 8, 16}) */
static inline f32v seg_max(f32v v, int n) {
    v = max_f(v, __builtin_shuffle(v, XOR1));
    if (n > 2) v = max_f(v, __builtin_shuffle(v, XOR2));
    if (n > 4) v = max_f(v, __builtin_shuffle(v, XOR4));
    if (n > 8) v = max_f(v, __builtin_shuffle(v, XOR8));
    return v;
}

static inline f32v seg_sum(f32v v, int n) {
    v = v + __builtin_shuffle(v, XOR1);
    if (n > 2) v = v + __builtin_shuffle(v, XOR2);
    if (n > 4) v = v + __builtin_shuffle(v, XOR4);
    if (n > 8) v = v + __builtin_shuffle(v, XOR8);
    return v;
}

/* ------------------------------------------------------------------------------------- the noise */
typedef struct {
    f32v c[2], inv_c[2], log_c[2], a0, a1, ln2; /* the 32-row table as two vectors per column */
} log_table;

static void load_table(const float *consts, log_table *t) {
    for (int h = 0; h < 2; h++) {
        memcpy(&t->c[h], consts + 16 * h, 64);
        memcpy(&t->inv_c[h], consts + 32 + 16 * h, 64);
        memcpy(&t->log_c[h], consts + 64 + 16 * h, 64);
    }
    t->a0 = (f32v){0} + consts[96];
    t->a1 = (f32v){0} + consts[97];
    t->ln2 = (f32v){0} + consts[98];
}

/* column[row] for 16 rows in 0..31: one two-table permute with AVX-512, else gathers or plain indexing */
static inline f32v lookup(const f32v column[2], i32v row) {
#if defined(__AVX512F__)
    return __builtin_shuffle(column[0], column[1], row);
#elif defined(__AVX2__)
    const float *tab = (const float *)column;
    __m256i r[2];
    __m256 v[2];
    memcpy(r, &row, sizeof r);
    v[0] = _mm256_i32gather_ps(tab, r[0], 4);
    v[1] = _mm256_i32gather_ps(tab, r[1], 4);
    f32v out;
    memcpy(&out, v, sizeof out);
    return out;
#else
    const float *tab = (const float *)column;
    f32v out;
    for (int j = 0; j < LANES; j++) out[j] = tab[row[j]];
    return out;
#endif
}

/* natural log of positive normal floats: x = 2^k z, log x = k ln2 + log c + log1p((z - c) / c) */
static inline f32v log_v(f32v x, const log_table *t) {
    i32v ix = (i32v)x;
    i32v tmp = ix - LOG_OFFSET;
    i32v row = (tmp >> 18) & 31;
    i32v k = tmp >> 23;
    f32v z = (f32v)(ix - (tmp & (int32_t)0xff800000));
    f32v c = lookup(t->c, row), inv_c = lookup(t->inv_c, row), log_c = lookup(t->log_c, row);
    f32v r = (z - c) * inv_c;
    f32v r2 = r * r;
    f32v y = (r * t->a1 + t->a0) * r2 + r;
    return (__builtin_convertvector(k, f32v) * t->ln2 + log_c) + y;
}

/* the 32-bit words of elements e0 .. e0+15 (e0 even): halves of mix(seed + (e0/2 + 1 + j) * gamma) */
static inline u32v words16(uint64_t seed, int64_t e0) {
    u64v z = PAIR_GAMMA + ((uint64_t)((e0 >> 1) + 1) * GAMMA + seed);
    z = (z ^ (z >> 30)) * MIX1;
    z = (z ^ (z >> 27)) * MIX2;
    return (u32v)(z ^ (z >> 31));
}

static inline f32v gumbel_v(u32v w, const log_table *t) {
    f32v u = __builtin_convertvector((i32v)((w >> 8) | 1u), f32v) * 0x1p-24f;
    return -log_v(-log_v(u, t), t);
}

/* Gumbel noise of elements e0 .. e0+count-1 (any e0) */
static void gumbel_range(uint64_t seed, int64_t e0, int64_t count, const log_table *t, float *out) {
    int64_t i = 0;
    if ((e0 & 1) && count > 0) { /* odd start: lane 1 of the pair block at e0 - 1 */
        out[0] = gumbel_v(words16(seed, e0 - 1), t)[1];
        i = 1;
    }
    for (; i < count; i += LANES) store_n(out + i, gumbel_v(words16(seed, e0 + i), t), count - i);
}

void dpp_splitmix_words(uint64_t seed, int64_t e0, int64_t count, uint32_t *out) {
    for (int64_t i = 0; i < count; i++) {
        int64_t e = e0 + i;
        out[i] = words16(seed, e & ~(int64_t)1)[e & 1];
    }
}

void dpp_gumbel(uint64_t seed, int64_t e0, int64_t count, const float *consts, float *out) {
    log_table t;
    load_table(consts, &t);
    gumbel_range(seed, e0, count, &t, out);
}

/* ------------------------------------------------------------------------------------- top-k */
/* Exact successive draws for one group (any n): picks[i] = slot of draw i, taken[j] = drawn at all. */
static void topk_scalar(const float *p, int64_t n, int64_t k, int32_t *picks, unsigned char *taken) {
    memset(taken, 0, (size_t)n);
    for (int64_t i = 0; i < k; i++) {
        int64_t best = -1;
        for (int64_t j = 0; j < n; j++)
            if (!taken[j] && (best < 0 || p[j] > p[best])) best = j;
        if (best < 0) best = 0; /* unreachable: k < n leaves a slot */
        taken[best] = 1;
        picks[i] = (int32_t)best;
    }
}

/* The k draws of the 16/n groups in a vector of `cnt` valid lanes: pick[i] = the lane drawn per group at
 * draw i, maxima[i] = that draw's value broadcast over its group (k <= 15 here since n <= 16). */
static inline void topk_vec(f32v p, int n, int64_t k, int64_t cnt, mask16 *pick, f32v *maxima) {
    mask16 valid = m_first(cnt), taken = M_NONE;
    for (int64_t i = 0; i < k; i++) {
        f32v work = i ? blend(taken, (f32v){0} - __builtin_inff(), p) : p;
        maxima[i] = seg_max(work, n);
        pick[i] = m_eq(work, maxima[i]) & valid & ~taken;
        taken |= pick[i];
    }
    if (m_count(taken) == (int)(cnt / n * k)) return;
    /* a tie (or NaN): redo these groups exactly, as successive torch.argmax would */
    float pv[LANES], mx[LANES][LANES];
    int32_t picks[LANES];
    unsigned char seen[LANES];
    memcpy(pv, &p, sizeof pv);
    for (int64_t i = 0; i < k; i++) pick[i] = M_NONE;
    for (int g = 0; g * n < cnt; g++) {
        topk_scalar(pv + g * n, n, k, picks, seen);
        for (int64_t i = 0; i < k; i++) {
            pick[i] |= m_bit(g * n + picks[i]);
            for (int j = 0; j < n; j++) mx[i][g * n + j] = pv[g * n + picks[i]];
        }
    }
    for (int64_t i = 0; i < k; i++) memcpy(&maxima[i], mx[i], sizeof maxima[i]);
}

static inline int fast_n(int64_t n) { return n == 2 || n == 4 || n == 8 || n == 16; }

static int bad_shape(int64_t rows, int64_t groups, int64_t n, int64_t k, int64_t real, int64_t block) {
    return rows < 0 || groups < 1 || n < 2 || k < 1 || k >= n || real < 1 || real > groups * n || block < 1;
}

/* --------------------------------------------------------------------------- weight-side helpers */
/* out = w * mask for the slots [s0, s0 + cnt) of a row (slots >= real own no columns) */
static inline void write_masked(const float *w, float *out, int64_t s0, int64_t cnt, int64_t real, int64_t block,
                                mask16 keep) {
    int64_t live = min64(cnt, real - s0);
    if (live <= 0) return;
    if (block == 1) {
        store_n(out + s0, keep_f(keep, load_n(w + s0, live)), live);
        return;
    }
    for (int64_t j = 0; j < live; j++) {
        const float *src = w + (s0 + j) * block;
        float *dst = out + (s0 + j) * block;
        if (m_test(keep, (int)j)) memcpy(dst, src, (size_t)block * sizeof *dst);
        else memset(dst, 0, (size_t)block * sizeof *dst);
    }
}

/* grad_weight = grad_out * mask; returns per slot G = sum over its block of grad_out * weight (0 past real) */
static inline f32v slot_grads(const float *go, const float *w, float *gw, int64_t s0, int64_t cnt, int64_t real,
                              int64_t block, mask16 keep) {
    int64_t live = min64(cnt, real - s0);
    f32v G = {0};
    if (live <= 0) return G;
    if (block == 1) {
        f32v g = load_n(go + s0, live);
        store_n(gw + s0, keep_f(keep, g), live);
        return g * load_n(w + s0, live);
    }
    for (int64_t j = 0; j < live; j++) {
        const float *gs = go + (s0 + j) * block, *ws = w + (s0 + j) * block;
        float *dst = gw + (s0 + j) * block, acc = 0.0f;
        int kept = m_test(keep, (int)j);
        for (int64_t b = 0; b < block; b++) {
            dst[b] = kept ? gs[b] : 0.0f;
            acc += gs[b] * ws[b];
        }
        G[j] = acc;
    }
    return G;
}

/* a * b + c, fused where the machine has FMA (backward only: the gradients need no bitwise definition) */
static inline f32v fma_v(f32v a, f32v b, f32v c) {
#if defined(__AVX512F__)
    return (f32v)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
#else
    return a * b + c;
#endif
}

/* exp(x) for x <= 0 (Cephes expf polynomial, 2^n by exponent bits); exactly 0 below -60, so that no
 * subnormal (slow on x86) reaches the products after it: e^-60 is 1e-26 of the group's largest term */
static inline f32v exp_neg_v(f32v x) {
    i32v tiny = x < -60.0f;
    x = (f32v)((tiny & (i32v)((f32v){0} - 60.0f)) | (~tiny & (i32v)x));
    f32v fx = fma_v(x, (f32v){0} + 0x1.715476p+0f, (f32v){0} + 0x1.8p23f); /* round(x / ln2): 1.5 * 2^23 trick */
    fx = fx - 0x1.8p23f;
    x = fma_v(fx, (f32v){0} - 0x1.63p-1f, x);
    x = fma_v(fx, (f32v){0} + 0x1.bd0106p-13f, x);
    f32v y = fma_v(x, (f32v){0} + 0x1.a0d2cep-13f, (f32v){0} + 0x1.6e879cp-10f);
    y = fma_v(y, x, (f32v){0} + 0x1.111210p-7f);
    y = fma_v(y, x, (f32v){0} + 0x1.555382p-5f);
    y = fma_v(y, x, (f32v){0} + 0x1.555554p-3f);
    y = fma_v(y, x, (f32v){0} + 0x1.000000p-1f);
    y = fma_v(y, x * x, x + 1.0f);
    y = y * (f32v)((__builtin_convertvector(fx, i32v) + 127) << 23);
    return (f32v)(~tiny & (i32v)y);
}

/* ------------------------------------------------------------------------------ fast rows (n | 16) */
#define CHUNK 256 /* slots per pass of forward_row_fast: its perturbed logits stay in L1 between the two passes */

/* Two passes per chunk of a row: first the perturbed logits alone (noise and logs, a branch-free stream the
 * vector units can overlap across iterations), then the top-k and the masked weight from the L1 copy. One
 * fused loop doing both was 4-11 % slower on LeNet-300's layer shapes (same bits). */
static inline __attribute__((always_inline)) void forward_row_fast(
    const float *l, const float *w, float *o, float *p, int64_t e0, int64_t slots, int n, int64_t k, int64_t real,
    int64_t block, float c, uint64_t seed, const log_table *t) {
    const f32v pad_logit = (f32v){0} + PAD_LOGIT;
    float buf[CHUNK] __attribute__((aligned(64)));
    for (int64_t s0 = 0; s0 < slots; s0 += CHUNK) {
        int64_t end = min64(slots, s0 + CHUNK);
        for (int64_t s = s0; s < end; s += LANES) {
            int64_t cnt = min64(LANES, slots - s);
            __builtin_prefetch(l + s + PREFETCH, 0, 3);
            __builtin_prefetch(p + s + PREFETCH, 1, 3);
            f32v pv;
            if (s + LANES <= real) memcpy(&pv, l + s, sizeof pv);
            else pv = blend(m_ge_i(LANE, (int32_t)(real - s)), pad_logit, load_n(l + s, min64(cnt, real - s)));
            if (c != 0.0f) pv = pv + gumbel_v(words16(seed, e0 + s), t) * c;
            store_n(p + s, pv, cnt);
            memcpy(buf + (s - s0), &pv, sizeof pv);
        }
        for (int64_t s = s0; s < end; s += LANES) {
            int64_t cnt = min64(LANES, slots - s);
            __builtin_prefetch(w + s * block + PREFETCH, 0, 3);
            __builtin_prefetch(o + s * block + PREFETCH, 1, 3);
            f32v pv;
            memcpy(&pv, buf + (s - s0), sizeof pv);
            mask16 pick[LANES], keep = M_NONE;
            f32v maxima[LANES];
            topk_vec(pv, n, k, cnt, pick, maxima);
            for (int64_t i = 0; i < k; i++) keep |= pick[i];
            write_masked(w, o, s, cnt, real, block, keep);
        }
    }
}

static inline __attribute__((always_inline)) void backward_row_fast(
    const float *p, const float *go, const float *w, float *gw, float *gl, int64_t slots, int n, int64_t k,
    int64_t real, int64_t block, float inv_t) {
    const f32v vinv_t = (f32v){0} + inv_t;
    for (int64_t s = 0; s < slots; s += LANES) {
        int64_t cnt = min64(LANES, slots - s);
        __builtin_prefetch(p + s + PREFETCH, 0, 3);
        __builtin_prefetch(go + s + PREFETCH, 0, 3);
        __builtin_prefetch(w + s + PREFETCH, 0, 3);
        __builtin_prefetch(gw + s + PREFETCH, 1, 3);
        __builtin_prefetch(gl + s + PREFETCH, 1, 3);
        f32v pv = load_n(p + s, cnt), total = {0};
        mask16 pick[LANES], keep = M_NONE, taken = M_NONE;
        f32v maxima[LANES];
        topk_vec(pv, n, k, cnt, pick, maxima);
        for (int64_t i = 0; i < k; i++) keep |= pick[i];
        f32v G = slot_grads(go, w, gw, s, cnt, real, block, keep);
        for (int64_t i = 0; i < k; i++) {
            f32v e = exp_neg_v((pv - maxima[i]) * vinv_t);
            if (i) e = keep_f(~taken, e);
            f32v z = seg_sum(e, n), d = seg_sum(e * G, n), rz = recip(z);
            total = fma_v(e * (G - d * rz), rz * vinv_t, total);
            taken |= pick[i];
        }
        if (s + LANES > real) total = keep_f(~m_ge_i(LANE, (int32_t)(real - s)), total);
        store_n(gl + s, total, cnt);
    }
}

/* ------------------------------------------------------------------------ any n: one group at a time */
typedef struct {
    int32_t *picks;
    unsigned char *taken;
    float *buf; /* 4 n floats */
} scratch;

static int scratch_alloc(scratch *sc, int64_t n, int64_t k) {
    sc->picks = malloc((size_t)k * sizeof *sc->picks);
    sc->taken = malloc((size_t)n);
    sc->buf = malloc((size_t)(4 * n) * sizeof *sc->buf);
    return sc->picks && sc->taken && sc->buf ? 0 : -1;
}

static void scratch_free(scratch *sc) {
    free(sc->picks);
    free(sc->taken);
    free(sc->buf);
}

static void forward_row_any(const float *l, const float *w, float *o, float *p, int64_t e0, int64_t groups,
                            int64_t n, int64_t k, int64_t real, int64_t block, float c, uint64_t seed,
                            const log_table *t, scratch *sc) {
    int64_t slots = groups * n;
    if (c != 0.0f) gumbel_range(seed, e0, slots, t, p);
    for (int64_t s = 0; s < slots; s++) {
        float base = s < real ? l[s] : PAD_LOGIT;
        p[s] = c != 0.0f ? base + p[s] * c : base;
    }
    for (int64_t g = 0; g < groups; g++) {
        topk_scalar(p + g * n, n, k, sc->picks, sc->taken);
        for (int64_t j0 = 0; j0 < n; j0 += LANES) {
            mask16 keep = M_NONE;
            for (int j = 0; j < LANES && j0 + j < n; j++)
                if (sc->taken[j0 + j]) keep |= m_bit(j);
            write_masked(w, o, g * n + j0, min64(LANES, n - j0), real, block, keep);
        }
    }
}

static void backward_row_any(const float *p, const float *go, const float *w, float *gw, float *gl, int64_t groups,
                             int64_t n, int64_t k, int64_t real, int64_t block, float inv_t, scratch *sc) {
    float *G = sc->buf, *e = sc->buf + n, *total = sc->buf + 2 * n;
    for (int64_t g = 0; g < groups; g++) {
        const float *pg = p + g * n;
        topk_scalar(pg, n, k, sc->picks, sc->taken);
        for (int64_t j0 = 0; j0 < n; j0 += LANES) {
            int64_t cnt = min64(LANES, n - j0);
            mask16 keep = M_NONE;
            for (int j = 0; j < cnt; j++)
                if (sc->taken[j0 + j]) keep |= m_bit(j);
            f32v Gv = slot_grads(go, w, gw, g * n + j0, cnt, real, block, keep);
            for (int j = 0; j < cnt; j++) G[j0 + j] = Gv[j];
        }
        memset(sc->taken, 0, (size_t)n);
        for (int64_t j = 0; j < n; j++) total[j] = 0.0f;
        for (int64_t i = 0; i < k; i++) {
            float m = pg[sc->picks[i]], z = 0.0f, d = 0.0f;
            for (int64_t j0 = 0; j0 < n; j0 += LANES) {
                int64_t cnt = min64(LANES, n - j0);
                f32v ev = exp_neg_v((load_n(pg + j0, cnt) - m) * inv_t);
                for (int64_t j = 0; j < cnt; j++) e[j0 + j] = sc->taken[j0 + j] ? 0.0f : ev[j];
            }
            for (int64_t j = 0; j < n; j++) {
                z += e[j];
                d += e[j] * G[j];
            }
            float rz = 1.0f / z, dot = d * rz, scale = rz * inv_t;
            for (int64_t j = 0; j < n; j++) total[j] += e[j] * (G[j] - dot) * scale;
            sc->taken[sc->picks[i]] = 1;
        }
        for (int64_t j = 0; j < n; j++) gl[g * n + j] = g * n + j < real ? total[j] : 0.0f;
    }
}

/* ------------------------------------------------------------------------------- entry points */
/* BODY(N, K) for the (n, k) of the call, with n and k = 1 as compile-time constants in the common cases, so the
 * compiler folds the butterflies and the draw loop; n in {2, 4, 8, 16} (fast_n) */
#define DISPATCH_FAST(BODY) \
    do { \
        if (n == 8 && k == 1) BODY(8, 1); \
        else if (n == 4 && k == 1) BODY(4, 1); \
        else if (n == 16 && k == 1) BODY(16, 1); \
        else if (n == 2) BODY(2, 1); \
        else BODY((int)n, k); \
    } while (0)

#define FORWARD_FAST(N, K) \
    for (int64_t r = row0; r < row1; r++) \
        forward_row_fast(logits + r * slots, weight + r * cols, out + r * cols, pert + r * slots, r * slots, slots, \
                         N, K, real, block, noise_scale, seed, &t)

/* Rows [row0, row1) of the layer (callers may split the rows between threads: every element's noise depends
 * on its global index only, so the result is the same for any split). */
int dpp_kofn_forward(const float *weight, const float *logits, float *out, float *pert, int64_t rows, int64_t row0,
                     int64_t row1, int64_t groups, int64_t n, int64_t k, int64_t real, int64_t block, float noise_scale,
                     uint64_t seed, const float *consts) {
    if (bad_shape(rows, groups, n, k, real, block) || row0 < 0 || row0 > row1 || row1 > rows) return -2;
    int64_t slots = groups * n, cols = real * block;
    log_table t;
    load_table(consts, &t);
    if (fast_n(n)) {
        DISPATCH_FAST(FORWARD_FAST);
        return 0;
    }
    scratch sc;
    if (scratch_alloc(&sc, n, k)) {
        scratch_free(&sc);
        return -1;
    }
    for (int64_t r = row0; r < row1; r++)
        forward_row_any(logits + r * slots, weight + r * cols, out + r * cols, pert + r * slots, r * slots, groups, n,
                        k, real, block, noise_scale, seed, &t, &sc);
    scratch_free(&sc);
    return 0;
}

#define BACKWARD_FAST(N, K) \
    for (int64_t r = row0; r < row1; r++) \
        backward_row_fast(pert + r * slots, gout + r * cols, weight + r * cols, grad_weight + r * cols, \
                          grad_logits + r * slots, slots, N, K, real, block, inv_t)

static int backward_rows(const float *gout, const float *weight, const float *pert, float *grad_weight,
                         float *grad_logits, int64_t row0, int64_t row1, int64_t groups, int64_t n, int64_t k,
                         int64_t real, int64_t block, float inv_t) {
    int64_t slots = groups * n, cols = real * block;
    if (fast_n(n)) {
        DISPATCH_FAST(BACKWARD_FAST);
        return 0;
    }
    scratch sc;
    if (scratch_alloc(&sc, n, k)) {
        scratch_free(&sc);
        return -1;
    }
    for (int64_t r = row0; r < row1; r++)
        backward_row_any(pert + r * slots, gout + r * cols, weight + r * cols, grad_weight + r * cols,
                         grad_logits + r * slots, groups, n, k, real, block, inv_t, &sc);
    scratch_free(&sc);
    return 0;
}

int dpp_kofn_backward(const float *gout, const float *weight, const float *pert, float *grad_weight,
                      float *grad_logits, int64_t rows, int64_t row0, int64_t row1, int64_t groups, int64_t n,
                      int64_t k, int64_t real, int64_t block, float temperature) {
    if (bad_shape(rows, groups, n, k, real, block) || row0 < 0 || row0 > row1 || row1 > rows ||
        !(temperature > 0.0f))
        return -2;
    float inv_t = 1.0f / temperature;
#if defined(__SSE__)
    unsigned csr = _mm_getcsr();
    _mm_setcsr(csr | 0x8040); /* flush subnormals to zero here (FTZ | DAZ): they cost ~100 cycles each on x86 */
#endif
    int rc = backward_rows(gout, weight, pert, grad_weight, grad_logits, row0, row1, groups, n, k, real, block, inv_t);
#if defined(__SSE__)
    _mm_setcsr(csr);
#endif
    return rc;
}
