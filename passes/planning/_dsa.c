/*
 * nnopt's dynamic-storage-allocation core: greedy placement and an exact
 * branch-and-bound search over canonical placements.
 *
 * The exact search follows the ideas of MiniMalloc (Moffitt, ASPLOS'23):
 * buffers are placed in non-decreasing offset order, each at the lowest
 * offset its placed neighbours allow ("canonical" solutions, which contain
 * an optimum); time is cut into sections whose unplaced sizes give a lower
 * bound on the height reached ("section inference"); a candidate that would
 * leave a gap some other buffer must fill is skipped ("dominance"); the
 * problem splits into independent parts when no buffer spans a cut
 * ("decomposition"); several static preorders are tried round-robin with a
 * node budget that doubles each round.  This is an independent
 * implementation written for nnopt.
 *
 * Lifetimes are half-open [lo, hi).  All sizes and offsets are int64.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ST_OK 0
#define ST_NOT_FOUND 1
#define ST_ABORTED 2  /* node budget of this round exhausted */
#define ST_TIMEOUT 3

typedef int64_t i64;

/* ------------------------------------------------------------------ */
/* Problem and sweep                                                   */
/* ------------------------------------------------------------------ */

typedef struct {
    int n;
    i64 *lo, *hi, *size, *align;
    i64 capacity;
    /* sweep */
    int nsec;
    int *sec_lo, *sec_hi;        /* per buffer: [sec_lo, sec_hi) */
    int *sec_start, *sec_members; /* CSR: members of each section */
    int *ovl_start, *ovl;         /* CSR: time-overlapping buffers */
    int npart;
    int *part_start, *part_buffers; /* CSR: buffers of each partition */
    int *part_sec_lo, *part_sec_hi;
} Problem;

typedef struct {
    i64 key;
    int idx;
} KeyIdx;

static int cmp_keyidx(const void *a, const void *b) {
    const KeyIdx *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return x->idx - y->idx;
}

/* Frees what problem_sweep allocated (sec_lo/sec_hi belong to the caller). */
static void problem_free(Problem *p) {
    free(p->sec_start); free(p->sec_members);
    free(p->ovl_start); free(p->ovl); free(p->part_start); free(p->part_buffers);
    free(p->part_sec_lo); free(p->part_sec_hi);
}

/* Builds sections (maximal time spans with a constant, non-empty set of live
 * buffers), overlaps and partitions.  Returns 0 on success. */
static int problem_sweep(Problem *p) {
    int n = p->n;
    /* distinct event times */
    i64 *times = malloc(sizeof(i64) * 2 * (size_t)n + 1);
    KeyIdx *ev = malloc(sizeof(KeyIdx) * 2 * (size_t)n + 1);
    if (!times || !ev) { free(times); free(ev); return -1; }
    for (int i = 0; i < n; i++) { ev[2 * i].key = p->lo[i]; ev[2 * i].idx = i; ev[2 * i + 1].key = p->hi[i]; ev[2 * i + 1].idx = i; }
    qsort(ev, 2 * (size_t)n, sizeof(KeyIdx), cmp_keyidx);
    int nt = 0;
    for (int i = 0; i < 2 * n; i++) if (nt == 0 || times[nt - 1] != ev[i].key) times[nt++] = ev[i].key;
    free(ev);
    /* elementary intervals [times[k], times[k+1]) with live count > 0 become sections */
    int *delta = calloc((size_t)nt + 1, sizeof(int));
    int *tsec = malloc(sizeof(int) * ((size_t)nt + 1)); /* section index of elementary interval k, or -1 */
    if (!delta || !tsec) { free(times); free(delta); free(tsec); return -1; }
    for (int i = 0; i < n; i++) {
        /* binary search time index */
        int a = 0, b = nt - 1;
        while (a < b) { int m = (a + b) / 2; if (times[m] < p->lo[i]) a = m + 1; else b = m; }
        int ilo = a;
        a = 0; b = nt - 1;
        while (a < b) { int m = (a + b) / 2; if (times[m] < p->hi[i]) a = m + 1; else b = m; }
        int ihi = a;
        delta[ilo] += 1; delta[ihi] -= 1;
        p->sec_lo[i] = ilo; p->sec_hi[i] = ihi; /* time indices for now */
    }
    /* Sections: merge consecutive elementary intervals with the same live set.
     * The live set changes exactly at times where some buffer starts or ends,
     * so every elementary interval with live > 0 is its own section. */
    int live = 0, nsec = 0;
    for (int k = 0; k + 1 < nt; k++) {
        live += delta[k];
        tsec[k] = live > 0 ? nsec++ : -1;
    }
    p->nsec = nsec;
    /* convert buffer time ranges to section ranges */
    for (int i = 0; i < n; i++) {
        int k0 = p->sec_lo[i], k1 = p->sec_hi[i];
        int s0 = -1, s1 = -1;
        for (int k = k0; k < k1; k++) if (tsec[k] >= 0) { if (s0 < 0) s0 = tsec[k]; s1 = tsec[k] + 1; }
        p->sec_lo[i] = s0; p->sec_hi[i] = s1;
    }
    free(times); free(delta); free(tsec);
    /* members (CSR) */
    p->sec_start = calloc((size_t)nsec + 1, sizeof(int));
    if (!p->sec_start) return -1;
    for (int i = 0; i < n; i++) for (int s = p->sec_lo[i]; s < p->sec_hi[i]; s++) p->sec_start[s + 1]++;
    for (int s = 0; s < nsec; s++) p->sec_start[s + 1] += p->sec_start[s];
    p->sec_members = malloc(sizeof(int) * ((size_t)p->sec_start[nsec] + 1));
    int *fill = calloc((size_t)nsec + 1, sizeof(int));
    if (!p->sec_members || !fill) { free(fill); return -1; }
    for (int i = 0; i < n; i++) for (int s = p->sec_lo[i]; s < p->sec_hi[i]; s++) p->sec_members[p->sec_start[s] + fill[s]++] = i;
    free(fill);
    /* overlaps: buffers sharing a section */
    int *mark = malloc(sizeof(int) * ((size_t)n + 1));
    int *cnt = calloc((size_t)n + 1, sizeof(int));
    if (!mark || !cnt) { free(mark); free(cnt); return -1; }
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < n; i++) mark[i] = -1;
        if (pass == 1) {
            p->ovl_start = calloc((size_t)n + 1, sizeof(int));
            if (!p->ovl_start) { free(mark); free(cnt); return -1; }
            for (int i = 0; i < n; i++) p->ovl_start[i + 1] = p->ovl_start[i] + cnt[i];
            p->ovl = malloc(sizeof(int) * ((size_t)p->ovl_start[n] + 1));
            if (!p->ovl) { free(mark); free(cnt); return -1; }
            memset(cnt, 0, sizeof(int) * (size_t)n);
        }
        for (int i = 0; i < n; i++) {
            for (int s = p->sec_lo[i]; s < p->sec_hi[i]; s++) {
                for (int m = p->sec_start[s]; m < p->sec_start[s + 1]; m++) {
                    int j = p->sec_members[m];
                    if (j == i || mark[j] == i) continue;
                    mark[j] = i;
                    if (pass == 1) p->ovl[p->ovl_start[i] + cnt[i]] = j;
                    cnt[i]++;
                }
            }
        }
    }
    free(mark); free(cnt);
    /* partitions: maximal section ranges not cut (a cut between s and s+1 has no buffer spanning both) */
    int *span = calloc((size_t)nsec + 1, sizeof(int));
    if (!span) return -1;
    for (int i = 0; i < n; i++) for (int s = p->sec_lo[i]; s + 1 < p->sec_hi[i]; s++) span[s]++;
    p->part_sec_lo = malloc(sizeof(int) * ((size_t)nsec + 1));
    p->part_sec_hi = malloc(sizeof(int) * ((size_t)nsec + 1));
    int *sec_part = malloc(sizeof(int) * ((size_t)nsec + 1));
    if (!p->part_sec_lo || !p->part_sec_hi || !sec_part) { free(span); free(sec_part); return -1; }
    int np = 0;
    for (int s = 0; s < nsec; s++) {
        if (s == 0 || span[s - 1] == 0) { p->part_sec_lo[np] = s; np++; }
        sec_part[s] = np - 1;
        p->part_sec_hi[np - 1] = s + 1;
    }
    p->npart = np;
    p->part_start = calloc((size_t)np + 1, sizeof(int));
    p->part_buffers = malloc(sizeof(int) * ((size_t)n + 1));
    if (!p->part_start || !p->part_buffers) { free(span); free(sec_part); return -1; }
    for (int i = 0; i < n; i++) if (p->sec_lo[i] >= 0) p->part_start[sec_part[p->sec_lo[i]] + 1]++;
    for (int q = 0; q < np; q++) p->part_start[q + 1] += p->part_start[q];
    int *pf = calloc((size_t)np + 1, sizeof(int));
    if (!pf) { free(span); free(sec_part); return -1; }
    for (int i = 0; i < n; i++) if (p->sec_lo[i] >= 0) { int q = sec_part[p->sec_lo[i]]; p->part_buffers[p->part_start[q] + pf[q]++] = i; }
    free(pf); free(span); free(sec_part);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Greedy placement                                                    */
/* ------------------------------------------------------------------ */

static i64 align_up(i64 v, i64 a) {
    if (a <= 1) return v;
    i64 r = v % a;
    return r ? v + a - r : v;
}

typedef struct { i64 lo, hi; } Span;

static int cmp_span(const void *a, const void *b) {
    const Span *x = a, *y = b;
    if (x->lo != y->lo) return x->lo < y->lo ? -1 : 1;
    return x->hi < y->hi ? -1 : (x->hi > y->hi);
}

/* Places buffers in `order` (fixed[i] >= 0 pins buffer i, placed first).
 * mode 0: first fit (lowest gap), 1: best fit (smallest gap, then lowest).
 * Gaps include the one below the first placed block.  Returns the height. */
static i64 greedy_place(const Problem *p, const int *order, const i64 *fixed, int mode, i64 *off) {
    int n = p->n;
    char *placed = calloc((size_t)n + 1, 1);
    Span *spans = malloc(sizeof(Span) * ((size_t)n + 1));
    if (!placed || !spans) { free(placed); free(spans); return -1; }
    i64 height = 0;
    for (int i = 0; i < n; i++) {
        off[i] = -1;
        if (fixed && fixed[i] >= 0) { off[i] = fixed[i]; placed[i] = 1; if (fixed[i] + p->size[i] > height) height = fixed[i] + p->size[i]; }
    }
    for (int k = 0; k < n; k++) {
        int b = order[k];
        if (placed[b]) continue;
        int ns = 0;
        for (int m = p->ovl_start[b]; m < p->ovl_start[b + 1]; m++) {
            int j = p->ovl[m];
            if (placed[j]) { spans[ns].lo = off[j]; spans[ns].hi = off[j] + p->size[j]; ns++; }
        }
        qsort(spans, (size_t)ns, sizeof(Span), cmp_span);
        i64 best = -1, best_gap = -1, cur = 0;
        for (int s = 0; s <= ns; s++) {
            i64 start = align_up(cur, p->align[b]);
            i64 end = s < ns ? spans[s].lo : INT64_MAX;
            if (end - start >= p->size[b] && end >= start) {
                i64 gap = end - start;
                if (mode == 0) { best = start; break; }
                if (best < 0 || gap < best_gap) { best = start; best_gap = gap; }
            }
            if (s < ns && spans[s].hi > cur) cur = spans[s].hi;
        }
        off[b] = best;
        placed[b] = 1;
        if (best + p->size[b] > height) height = best + p->size[b];
    }
    free(placed); free(spans);
    return height;
}

/* ------------------------------------------------------------------ */
/* Exact search                                                        */
/* ------------------------------------------------------------------ */

typedef struct { int kind; int idx; i64 value; } Change; /* kind 0: min_off, 1: floor */

typedef struct {
    const Problem *p;
    i64 *off, *min_off, *sol;
    i64 *floor, *total;
    int *cuts;
    int *preidx;            /* preorder index of each buffer (current subsolve) */
    Change *trail; size_t trail_len, trail_cap;
    int *aff_mark, aff_stamp; int *aff_list;
    long long nodes_left, nodes;
    double deadline;
    const char *heuristic;
    char *pool; size_t pool_used, pool_cap; /* bump allocator (bytes), 8-byte aligned blocks */
} Search;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int trail_push(Search *s, int kind, int idx, i64 value) {
    if (s->trail_len == s->trail_cap) {
        size_t cap = s->trail_cap ? s->trail_cap * 2 : 1024;
        Change *t = realloc(s->trail, cap * sizeof(Change));
        if (!t) return -1;
        s->trail = t; s->trail_cap = cap;
    }
    s->trail[s->trail_len].kind = kind; s->trail[s->trail_len].idx = idx; s->trail[s->trail_len].value = value;
    s->trail_len++;
    return 0;
}

static void trail_undo(Search *s, size_t mark) {
    while (s->trail_len > mark) {
        Change *c = &s->trail[--s->trail_len];
        if (c->kind == 0) s->min_off[c->idx] = c->value; else s->floor[c->idx] = c->value;
    }
}

static void *pool_bytes(Search *s, size_t bytes) {
    size_t need = (bytes + 7) & ~(size_t)7;
    if (s->pool_used + need > s->pool_cap) return NULL;
    void *r = s->pool + s->pool_used;
    s->pool_used += need;
    return r;
}

static int *pool_alloc(Search *s, size_t count) { return pool_bytes(s, count * sizeof(int)); }

typedef struct { i64 area, width, total, size; int idx; } Pre;
static const char *g_heur;
static int cmp_pre(const void *a, const void *b) {
    const Pre *x = a, *y = b;
    for (const char *c = g_heur; *c; c++) {
        i64 u = 0, v = 0;
        switch (*c) {
            case 'A': u = x->area; v = y->area; break;
            case 'W': u = x->width; v = y->width; break;
            case 'T': u = x->total; v = y->total; break;
            case 'Z': u = x->size; v = y->size; break;
            default: continue;
        }
        if (u != v) return u > v ? -1 : 1;
    }
    return x->idx - y->idx;
}

static int subsolve(Search *s, const int *bufs, int nb, int sec_lo, int sec_hi);

/* Assign buffer b at offset o; record undo info; returns 0 on success, -1 OOM. */
static int place(Search *s, int b, i64 o, int *n_aff) {
    const Problem *p = s->p;
    i64 height = o + p->size[b];
    s->off[b] = o;
    s->aff_stamp++;
    int na = 0;
    for (int m = p->ovl_start[b]; m < p->ovl_start[b + 1]; m++) {
        int j = p->ovl[m];
        if (s->off[j] >= 0 || s->min_off[j] >= height) continue;
        if (trail_push(s, 0, j, s->min_off[j])) return -1;
        s->min_off[j] = align_up(height, p->align[j]);
        for (int q = p->sec_lo[j]; q < p->sec_hi[j]; q++) {
            if (s->aff_mark[q] != s->aff_stamp) { s->aff_mark[q] = s->aff_stamp; s->aff_list[na++] = q; }
        }
    }
    for (int q = p->sec_lo[b]; q < p->sec_hi[b]; q++) {
        if (trail_push(s, 1, q, s->floor[q])) return -1;
        s->floor[q] = height;
        s->total[q] -= p->size[b];
    }
    for (int a = 0; a < na; a++) {
        int q = s->aff_list[a];
        i64 mn = INT64_MAX;
        for (int m = p->sec_start[q]; m < p->sec_start[q + 1]; m++) {
            int j = p->sec_members[m];
            if (s->off[j] < 0 && s->min_off[j] < mn) mn = s->min_off[j];
        }
        if (mn != INT64_MAX && s->floor[q] < mn) {
            if (trail_push(s, 1, q, s->floor[q])) return -1;
            s->floor[q] = mn;
        }
    }
    *n_aff = na;
    return 0;
}

static void unplace(Search *s, int b, size_t mark) {
    const Problem *p = s->p;
    trail_undo(s, mark);
    for (int q = p->sec_lo[b]; q < p->sec_hi[b]; q++) s->total[q] += p->size[b];
    s->off[b] = -1;
}

static int check(const Search *s, int sec_lo, int sec_hi, i64 o) {
    for (int q = sec_lo; q < sec_hi; q++) {
        i64 f = s->floor[q] > o ? s->floor[q] : o;
        if (f + s->total[q] > s->p->capacity) return 0;
    }
    return 1;
}

typedef struct { i64 off; int pre; int b; } Cand;
static int cmp_cand(const void *a, const void *b) {
    const Cand *x = a, *y = b;
    if (x->off != y->off) return x->off < y->off ? -1 : 1;
    return x->pre - y->pre;
}

static int search(Search *s, const int *bufs, int nb, int sec_lo, int sec_hi, i64 min_offset, int min_pre);

static int decompose(Search *s, const int *bufs, int nb, int sec_lo, int sec_hi, int b, i64 o, int pre) {
    const Problem *p = s->p;
    s->sol[b] = s->off[b];
    int *cut_points = pool_alloc(s, (size_t)(sec_hi - sec_lo) + 2);
    if (!cut_points) return ST_TIMEOUT;
    int nc = 0;
    cut_points[nc++] = sec_lo;
    for (int q = p->sec_lo[b]; q + 1 < p->sec_hi[b]; q++) {
        if (--s->cuts[q] == 0) cut_points[nc++] = q + 1;
    }
    int st = ST_OK;
    if (nc == 1) {
        st = search(s, bufs, nb, sec_lo, sec_hi, o, pre);
    } else {
        cut_points[nc++] = sec_hi;
        int *sub = pool_alloc(s, (size_t)nb + 1);
        if (!sub) st = ST_TIMEOUT;
        for (int c = 1; c < nc && st == ST_OK; c++) {
            int lo = cut_points[c - 1], hi = cut_points[c];
            int ns = 0;
            for (int k = 0; k < nb; k++) {
                int j = bufs[k];
                if (s->off[j] >= 0) continue;
                if (!(p->sec_hi[j] <= lo || hi <= p->sec_lo[j])) sub[ns++] = j;
            }
            if (ns == 0) continue;
            size_t saved = s->pool_used;
            st = subsolve(s, sub, ns, lo, hi);
            s->pool_used = saved;
        }
    }
    for (int q = p->sec_lo[b]; q + 1 < p->sec_hi[b]; q++) s->cuts[q]++;
    return st;
}

static int search(Search *s, const int *bufs, int nb, int sec_lo, int sec_hi, i64 min_offset, int min_pre) {
    const Problem *p = s->p;
    if (s->nodes_left <= 0) return ST_ABORTED;
    s->nodes_left--;
    s->nodes++;
    if ((s->nodes & 255) == 0 && now_s() > s->deadline) return ST_TIMEOUT;
    size_t saved_pool = s->pool_used;
    Cand *cand = pool_bytes(s, ((size_t)nb + 1) * sizeof(Cand));
    if (!cand) return ST_TIMEOUT;
    int nc = 0;
    for (int k = 0; k < nb; k++) {
        int j = bufs[k];
        if (s->off[j] >= 0) continue;
        cand[nc].off = s->min_off[j]; cand[nc].pre = s->preidx[j]; cand[nc].b = j; nc++;
    }
    if (nc == 0) {
        for (int k = 0; k < nb; k++) s->sol[bufs[k]] = s->off[bufs[k]];
        s->pool_used = saved_pool;
        return ST_OK;
    }
    qsort(cand, (size_t)nc, sizeof(Cand), cmp_cand);
    i64 min_height = INT64_MAX;
    for (int k = 0; k < nc; k++) { i64 h = cand[k].off + p->size[cand[k].b]; if (h < min_height) min_height = h; }
    int result = ST_NOT_FOUND;
    for (int k = 0; k < nc; k++) {
        i64 o = cand[k].off; int pre = cand[k].pre, b = cand[k].b;
        if (o < min_offset || (o == min_offset && pre < min_pre)) continue; /* canonical order */
        if (o >= min_height) continue;                                      /* dominance */
        if (o + p->size[b] > p->capacity) continue;
        size_t mark = s->trail_len;
        int na = 0;
        if (place(s, b, o, &na)) { result = ST_TIMEOUT; break; }
        int st = ST_NOT_FOUND;
        if (check(s, sec_lo, sec_hi, o)) st = decompose(s, bufs, nb, sec_lo, sec_hi, b, o, pre);
        unplace(s, b, mark);
        if (st != ST_NOT_FOUND) { result = st; break; }
    }
    s->pool_used = saved_pool;
    return result;
}

static int subsolve(Search *s, const int *bufs, int nb, int sec_lo, int sec_hi) {
    const Problem *p = s->p;
    Pre *pre = malloc(sizeof(Pre) * ((size_t)nb + 1));
    if (!pre) return ST_TIMEOUT;
    for (int k = 0; k < nb; k++) {
        int j = bufs[k];
        i64 tot = 0;
        for (int q = p->sec_lo[j]; q < p->sec_hi[j]; q++) if (s->total[q] > tot) tot = s->total[q];
        pre[k].width = p->hi[j] - p->lo[j];
        pre[k].size = p->size[j];
        pre[k].area = pre[k].width * p->size[j];
        pre[k].total = tot;
        pre[k].idx = j;
    }
    g_heur = s->heuristic;
    qsort(pre, (size_t)nb, sizeof(Pre), cmp_pre);
    int *order = pool_alloc(s, (size_t)nb + 1);
    if (!order) { free(pre); return ST_TIMEOUT; }
    int *saved_pre = malloc(sizeof(int) * ((size_t)nb + 1));
    if (!saved_pre) { free(pre); return ST_TIMEOUT; }
    for (int k = 0; k < nb; k++) { order[k] = pre[k].idx; saved_pre[k] = s->preidx[pre[k].idx]; s->preidx[pre[k].idx] = k; }
    int st = search(s, order, nb, sec_lo, sec_hi, 0, 0);
    for (int k = 0; k < nb; k++) s->preidx[pre[k].idx] = saved_pre[k];
    free(saved_pre);
    free(pre);
    return st;
}

/* Decides whether all buffers fit in p->capacity.  Returns a status; on ST_OK
 * the offsets are in `out`. */
static int exact_solve(const Problem *p, const char **heuristics, int nh, double time_limit,
                       long long max_nodes, i64 *out, long long *nodes_out) {
    int n = p->n;
    Search s;
    memset(&s, 0, sizeof(s));
    s.p = p;
    s.off = malloc(sizeof(i64) * ((size_t)n + 1));
    s.min_off = malloc(sizeof(i64) * ((size_t)n + 1));
    s.sol = malloc(sizeof(i64) * ((size_t)n + 1));
    s.floor = calloc((size_t)p->nsec + 1, sizeof(i64));
    s.total = calloc((size_t)p->nsec + 1, sizeof(i64));
    s.cuts = calloc((size_t)p->nsec + 1, sizeof(int));
    s.preidx = calloc((size_t)n + 1, sizeof(int));
    s.aff_mark = calloc((size_t)p->nsec + 1, sizeof(int));
    s.aff_list = malloc(sizeof(int) * ((size_t)p->nsec + 1));
    /* Worst case per search level: candidates, cut points, a sub-partition and its order. */
    s.pool_cap = ((size_t)n + 4) * (sizeof(Cand) * ((size_t)n + 2) + 16 * ((size_t)n + (size_t)p->nsec + 8));
    s.pool = malloc(s.pool_cap);
    int st = ST_TIMEOUT;
    if (!s.off || !s.min_off || !s.sol || !s.floor || !s.total || !s.cuts || !s.preidx || !s.aff_mark || !s.aff_list || !s.pool) goto done;
    for (int i = 0; i < n; i++) {
        if (p->size[i] > p->capacity) { st = ST_NOT_FOUND; goto done; }
    }
    s.deadline = now_s() + time_limit;
    long long limit = n > 0 ? n : 1;
    for (;;) {
        int round_status = ST_ABORTED;
        for (int h = 0; h < nh; h++) {
            for (int i = 0; i < n; i++) { s.off[i] = -1; s.min_off[i] = 0; s.sol[i] = -1; }
            for (int q = 0; q < p->nsec; q++) { s.floor[q] = 0; s.total[q] = 0; s.cuts[q] = 0; }
            for (int q = 0; q < p->nsec; q++)
                for (int m = p->sec_start[q]; m < p->sec_start[q + 1]; m++) s.total[q] += p->size[p->sec_members[m]];
            for (int i = 0; i < n; i++) for (int q = p->sec_lo[i]; q + 1 < p->sec_hi[i]; q++) s.cuts[q]++;
            s.trail_len = 0;
            s.pool_used = 0;
            s.heuristic = heuristics[h];
            s.nodes_left = max_nodes > 0 && max_nodes - s.nodes < limit ? max_nodes - s.nodes : limit;
            st = ST_OK;
            for (int q = 0; q < p->npart && st == ST_OK; q++) {
                int nb = p->part_start[q + 1] - p->part_start[q];
                st = subsolve(&s, p->part_buffers + p->part_start[q], nb, p->part_sec_lo[q], p->part_sec_hi[q]);
            }
            if (st != ST_ABORTED) { round_status = st; break; }
            if (max_nodes > 0 && s.nodes >= max_nodes) { round_status = ST_TIMEOUT; break; }
        }
        if (round_status != ST_ABORTED) { st = round_status; break; }
        if (now_s() > s.deadline) { st = ST_TIMEOUT; break; }
        limit *= 2;
    }
    if (st == ST_OK) for (int i = 0; i < n; i++) out[i] = s.sol[i] < 0 ? 0 : s.sol[i];
done:
    if (nodes_out) *nodes_out = s.nodes;
    free(s.off); free(s.min_off); free(s.sol); free(s.floor); free(s.total); free(s.cuts);
    free(s.preidx); free(s.aff_mark); free(s.aff_list); free(s.pool); free(s.trail);
    return st;
}

/* ------------------------------------------------------------------ */
/* Python bindings                                                     */
/* ------------------------------------------------------------------ */

static int read_i64_list(PyObject *seq, i64 *out, Py_ssize_t n, const char *what) {
    PyObject *fast = PySequence_Fast(seq, what);
    if (!fast) return -1;
    if (PySequence_Fast_GET_SIZE(fast) != n) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd values", what, n);
        Py_DECREF(fast);
        return -1;
    }
    PyObject **items = PySequence_Fast_ITEMS(fast);
    for (Py_ssize_t i = 0; i < n; i++) {
        long long v = PyLong_AsLongLong(items[i]);
        if (v == -1 && PyErr_Occurred()) { Py_DECREF(fast); return -1; }
        out[i] = v;
    }
    Py_DECREF(fast);
    return 0;
}

typedef struct { Problem p; i64 *mem; } Loaded;

static int load_problem(PyObject *lo, PyObject *hi, PyObject *size, PyObject *align, long long capacity, Loaded *L) {
    memset(L, 0, sizeof(*L));
    Py_ssize_t n = PySequence_Size(lo);
    if (n < 0) return -1;
    if (n > 2000000) { PyErr_SetString(PyExc_ValueError, "too many buffers"); return -1; }
    L->mem = malloc(sizeof(i64) * 4 * ((size_t)n + 1));
    int *ints = malloc(sizeof(int) * 2 * ((size_t)n + 1));
    if (!L->mem || !ints) { free(L->mem); free(ints); PyErr_NoMemory(); return -1; }
    Problem *p = &L->p;
    p->n = (int)n;
    p->lo = L->mem; p->hi = L->mem + n + 1; p->size = L->mem + 2 * (n + 1); p->align = L->mem + 3 * (n + 1);
    p->sec_lo = ints; p->sec_hi = ints + n + 1;
    p->capacity = capacity;
    if (read_i64_list(lo, p->lo, n, "lower") || read_i64_list(hi, p->hi, n, "upper") ||
        read_i64_list(size, p->size, n, "size") || read_i64_list(align, p->align, n, "alignment")) {
        free(L->mem); free(ints); return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (p->hi[i] <= p->lo[i] || p->size[i] <= 0 || p->align[i] <= 0) {
            PyErr_Format(PyExc_ValueError, "buffer %zd: need lower < upper, size > 0, alignment > 0", i);
            free(L->mem); free(ints); return -1;
        }
    }
    if (problem_sweep(p)) {
        PyErr_NoMemory();
        problem_free(p); free(ints); free(L->mem);
        return -1;
    }
    return 0;
}

static void unload(Loaded *L) {
    problem_free(&L->p);
    free(L->p.sec_lo); /* the int block that also holds sec_hi */
    free(L->mem);
}

static PyObject *offsets_list(const i64 *off, int n) {
    PyObject *list = PyList_New(n);
    if (!list) return NULL;
    for (int i = 0; i < n; i++) PyList_SET_ITEM(list, i, PyLong_FromLongLong(off[i]));
    return list;
}

PyDoc_STRVAR(greedy_doc,
"greedy(lower, upper, size, alignment, order, fixed, best_fit) -> (offsets, height)\n\n"
"Place buffers in `order` at the lowest (first fit) or tightest (best fit) gap, pinned buffers first.");

static PyObject *py_greedy(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *lo, *hi, *size, *align, *order, *fixed;
    int best_fit;
    if (!PyArg_ParseTuple(args, "OOOOOOp", &lo, &hi, &size, &align, &order, &fixed, &best_fit)) return NULL;
    Loaded L;
    if (load_problem(lo, hi, size, align, INT64_MAX, &L)) return NULL;
    int n = L.p.n;
    i64 *ord64 = malloc(sizeof(i64) * ((size_t)n + 1));
    i64 *fix = malloc(sizeof(i64) * ((size_t)n + 1));
    int *ord = malloc(sizeof(int) * ((size_t)n + 1));
    i64 *off = malloc(sizeof(i64) * ((size_t)n + 1));
    PyObject *result = NULL;
    if (!ord64 || !fix || !ord || !off) { PyErr_NoMemory(); goto out; }
    if (read_i64_list(order, ord64, n, "order") || read_i64_list(fixed, fix, n, "fixed")) goto out;
    for (int i = 0; i < n; i++) {
        if (ord64[i] < 0 || ord64[i] >= n) { PyErr_SetString(PyExc_ValueError, "order is not a permutation"); goto out; }
        ord[i] = (int)ord64[i];
    }
    i64 h;
    Py_BEGIN_ALLOW_THREADS
    h = greedy_place(&L.p, ord, fix, best_fit, off);
    Py_END_ALLOW_THREADS
    if (h < 0) { PyErr_NoMemory(); goto out; }
    {
        PyObject *offs = offsets_list(off, n);
        if (offs) { result = Py_BuildValue("(NL)", offs, (long long)h); }
    }
out:
    free(ord64); free(fix); free(ord); free(off);
    unload(&L);
    return result;
}

PyDoc_STRVAR(solve_doc,
"solve(lower, upper, size, alignment, capacity, time_limit, max_nodes, heuristics) -> (status, offsets, nodes)\n\n"
"Exact decision search: do all buffers fit below `capacity`? status is 'ok' (offsets given),\n"
"'infeasible' (proven), or 'timeout'.  max_nodes <= 0 means no node limit.");

static PyObject *py_solve(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *lo, *hi, *size, *align, *heur;
    long long capacity, max_nodes;
    double time_limit;
    if (!PyArg_ParseTuple(args, "OOOOLdLO", &lo, &hi, &size, &align, &capacity, &time_limit, &max_nodes, &heur)) return NULL;
    PyObject *hfast = PySequence_Fast(heur, "heuristics");
    if (!hfast) return NULL;
    Py_ssize_t nh = PySequence_Fast_GET_SIZE(hfast);
    if (nh < 1 || nh > 16) { Py_DECREF(hfast); PyErr_SetString(PyExc_ValueError, "1 to 16 heuristics"); return NULL; }
    const char *hs[16];
    for (Py_ssize_t i = 0; i < nh; i++) {
        hs[i] = PyUnicode_AsUTF8(PySequence_Fast_GET_ITEM(hfast, i));
        if (!hs[i]) { Py_DECREF(hfast); return NULL; }
    }
    Loaded L;
    if (load_problem(lo, hi, size, align, capacity, &L)) { Py_DECREF(hfast); return NULL; }
    int n = L.p.n;
    i64 *off = calloc((size_t)n + 1, sizeof(i64));
    if (!off) { unload(&L); Py_DECREF(hfast); return PyErr_NoMemory(); }
    long long nodes = 0;
    int st;
    Py_BEGIN_ALLOW_THREADS
    st = exact_solve(&L.p, hs, (int)nh, time_limit, max_nodes, off, &nodes);
    Py_END_ALLOW_THREADS
    PyObject *result;
    if (st == ST_OK) result = Py_BuildValue("(sNL)", "ok", offsets_list(off, n), nodes);
    else if (st == ST_NOT_FOUND) result = Py_BuildValue("(sOL)", "infeasible", Py_None, nodes);
    else result = Py_BuildValue("(sOL)", "timeout", Py_None, nodes);
    free(off);
    unload(&L);
    Py_DECREF(hfast);
    return result;
}

static PyMethodDef methods[] = {
    {"greedy", py_greedy, METH_VARARGS, greedy_doc},
    {"solve", py_solve, METH_VARARGS, solve_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_dsa",
    "Dynamic storage allocation core of nnopt's planner (greedy and exact search).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__dsa(void) { return PyModule_Create(&module); }
