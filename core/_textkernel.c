/* collapseguard.core._textkernel: the cheap path's hot loops, in C.
 *
 * Optional: setuptools builds it when a compiler and Python headers are there; without it
 * core/text.py's pure-Python definitions run. The kernel returns only integers and strings
 * (counts, lengths, tokens joined), never a float: every float is still computed by the same
 * Python expression on either path, so the two give bit-identical signals on any Python.
 * Characters are classified as Python's `re` and str methods classify them (Py_UNICODE_ISALNUM,
 * Py_UNICODE_ISSPACE, Py_UNICODE_ISALPHA), so any text, not only ASCII, takes this path.
 * tests/core/test_textkernel.py checks every function against its Python definition.
 *
 *   word_stats(low, window, ngram, common) -> (n_tokens, window_counts, n_types,
 *                                              n_distinct_ngrams | None, rare | None,
 *                                              distinct_words | None, tail)
 *       The tokens of lower-cased `low` (core.text.lower_tokens, i.e. core.text._WORD) and
 *       what transforms/signals.py counts on them (signals.word_counts returns the same):
 *       per full window of `window` tokens, the count of each distinct token in the order of
 *       first appearance (what Counter(window).values() gives); distinct tokens; distinct word
 *       `ngram`-grams (None under one n-gram); distinct rare words and distinct words against
 *       the set `common` (None when `common` is None; see signals.rare_word_counts); and the
 *       tokens after the last full window joined by single spaces.
 *   sentence_lengths(text) -> list[int]
 *       Words per sentence exactly as signals.sentence_lengths counts them.
 *   word_punct_join(text) -> str
 *       " ".join(re.findall(r"\w+|[^\w\s]", text)): the classifier's input view "words".
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define KERNEL_VERSION 1

/* A str's characters: its ASCII bytes as they are, any other str as a UCS4 copy. */
typedef struct {
    const unsigned char *ascii;
    Py_UCS4 *ucs4;
    Py_ssize_t len;
} Text;

static int text_open(Text *t, PyObject *str) {
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(str) < 0) return -1; /* a legacy str made by old C APIs */
#endif
    t->len = PyUnicode_GET_LENGTH(str);
    if (PyUnicode_IS_ASCII(str)) {
        t->ascii = (const unsigned char *)PyUnicode_DATA(str);
        t->ucs4 = NULL;
        return 0;
    }
    t->ascii = NULL;
    t->ucs4 = PyUnicode_AsUCS4Copy(str);
    return t->ucs4 ? 0 : -1;
}

/* text_open for a function's one argument, which must be a str. */
static int text_open_arg(Text *t, PyObject *arg, const char *fn) {
    if (!PyUnicode_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "%s expects a str, not %.80s", fn, Py_TYPE(arg)->tp_name);
        return -1;
    }
    return text_open(t, arg);
}

static void text_close(Text *t) {
    PyMem_Free(t->ucs4);
    t->ucs4 = NULL;
}

static inline Py_UCS4 at(const Text *t, Py_ssize_t i) { return t->ascii ? t->ascii[i] : t->ucs4[i]; }

/* str.isspace() and re's \s */
static inline int is_space(Py_UCS4 c) {
    if (c < 128) return c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f);
    return Py_UNICODE_ISSPACE(c);
}
/* re's [^\W_]: a letter or digit (core.text._WORD's characters) */
static inline int is_alnum(Py_UCS4 c) {
    if (c < 128) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    return Py_UNICODE_ISALNUM(c);
}
/* re's \w */
static inline int is_word(Py_UCS4 c) { return c == '_' || is_alnum(c); }
/* str.isalpha() of one character */
static inline int is_alpha(Py_UCS4 c) {
    if (c < 128) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    return Py_UNICODE_ISALPHA(c);
}
/* an apostrophe inside a word: ' or U+2019 */
static inline int is_apostrophe(Py_UCS4 c) { return c == '\'' || c == 0x2019; }
/* a sentence end: . ! ? and the CJK stops (signals._SENTENCE_END) */
static inline int is_stop(Py_UCS4 c) {
    return c == '.' || c == '!' || c == '?' || c == 0x3002 || c == 0xff01 || c == 0xff1f;
}

/* A word's hash: FNV-1a over its code points. Documents' words (hash_span) and the word sets'
 * (table_build) must hash alike, so both go through these three. */
#define FNV_OFFSET 1469598103934665603ULL
static inline uint64_t fnv_step(uint64_t h, Py_UCS4 c) { return (h ^ c) * 1099511628211ULL; }
static inline uint64_t fnv_finish(uint64_t h) { return h ^ (h >> 29); }

static inline uint64_t hash_span(const Text *t, Py_ssize_t start, Py_ssize_t n) {
    uint64_t h = FNV_OFFSET;
    for (Py_ssize_t i = start; i < start + n; i++) h = fnv_step(h, at(t, i));
    return fnv_finish(h);
}

static inline int same_span(const Text *t, Py_ssize_t a, Py_ssize_t b, Py_ssize_t n) {
    if (t->ascii) return memcmp(t->ascii + a, t->ascii + b, n) == 0;
    return memcmp(t->ucs4 + a, t->ucs4 + b, n * sizeof(Py_UCS4)) == 0;
}

static inline uint64_t mix64(uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static size_t table_size(Py_ssize_t n) {
    size_t size = 16;
    while (size < (size_t)n * 2) size <<= 1;
    return size;
}

typedef struct {
    Py_ssize_t start, len;
} Span;

/* A frozenset of words as a hash table over code points (the hash of `hash_span`), so a
 * document's distinct words are looked up without making a str of each. Built once per set and
 * kept (with a reference to the set, so its address is not reused) for the life of the process:
 * a worker sees one set per language. Only frozensets are cached: they cannot change. */
typedef struct {
    PyObject *set;
    size_t mask;
    int32_t *slots;
    uint64_t *hash;
    Py_ssize_t *start, *len;
    Py_UCS4 *chars;
} WordTable;

#define N_TABLES 64
static WordTable word_tables[N_TABLES];
static int word_tables_next = 0;

static void table_free(WordTable *w) {
    Py_CLEAR(w->set);
    PyMem_Free(w->slots);
    PyMem_Free(w->hash);
    PyMem_Free(w->start);
    PyMem_Free(w->len);
    PyMem_Free(w->chars);
    memset(w, 0, sizeof(*w));
}

static int table_build(WordTable *w, PyObject *set) {
    Py_ssize_t n = PySet_GET_SIZE(set), used = 0, cap = 16, k = 0;
    size_t size = 16;
    while (size < (size_t)(n ? n : 1) * 2) size <<= 1;
    w->mask = size - 1;
    w->slots = PyMem_Malloc(size * sizeof(int32_t));
    w->hash = PyMem_Malloc((n ? n : 1) * sizeof(uint64_t));
    w->start = PyMem_Malloc((n ? n : 1) * sizeof(Py_ssize_t));
    w->len = PyMem_Malloc((n ? n : 1) * sizeof(Py_ssize_t));
    w->chars = PyMem_Malloc(cap * sizeof(Py_UCS4));
    if (!w->slots || !w->hash || !w->start || !w->len || !w->chars) {
        PyErr_NoMemory();
        return -1;
    }
    memset(w->slots, 0xff, size * sizeof(int32_t));
    PyObject *it = PyObject_GetIter(set), *item;
    if (!it) return -1;
    while ((item = PyIter_Next(it)) != NULL) {
        if (!PyUnicode_Check(item)) { /* only a str can equal a token */
            Py_DECREF(item);
            continue;
        }
        Py_ssize_t len = PyUnicode_GET_LENGTH(item);
        if (used + len > cap) {
            while (used + len > cap) cap *= 2;
            Py_UCS4 *grown = PyMem_Realloc(w->chars, cap * sizeof(Py_UCS4));
            if (!grown) {
                Py_DECREF(item);
                Py_DECREF(it);
                PyErr_NoMemory();
                return -1;
            }
            w->chars = grown;
        }
        if (len && !PyUnicode_AsUCS4(item, w->chars + used, len, 0)) {
            Py_DECREF(item);
            Py_DECREF(it);
            return -1;
        }
        Py_DECREF(item);
        uint64_t h = FNV_OFFSET;
        for (Py_ssize_t i = used; i < used + len; i++) h = fnv_step(h, w->chars[i]);
        h = fnv_finish(h);
        size_t slot = (size_t)h & w->mask;
        while (w->slots[slot] >= 0) slot = (slot + 1) & w->mask;
        w->slots[slot] = (int32_t)k;
        w->hash[k] = h;
        w->start[k] = used;
        w->len[k] = len;
        k++;
        used += len;
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) return -1;
    w->set = Py_NewRef(set);
    return 0;
}

/* The table of a frozenset (built on first use), or NULL with an error set. */
static WordTable *table_for(PyObject *set) {
    for (int i = 0; i < N_TABLES; i++)
        if (word_tables[i].set == set) return &word_tables[i];
    WordTable *w = &word_tables[word_tables_next];
    word_tables_next = (word_tables_next + 1) % N_TABLES;
    table_free(w);
    if (table_build(w, set) < 0) {
        table_free(w);
        return NULL;
    }
    return w;
}

/* Whether the word at t[start:start + len] (hash h, as hash_span) is in the table. */
static int table_has(const WordTable *w, const Text *t, Py_ssize_t start, Py_ssize_t len, uint64_t h) {
    size_t slot = (size_t)h & w->mask;
    for (;;) {
        int32_t k = w->slots[slot];
        if (k < 0) return 0;
        if (w->hash[k] == h && w->len[k] == len) {
            const Py_UCS4 *c = w->chars + w->start[k];
            Py_ssize_t j = 0;
            while (j < len && c[j] == at(t, start + j)) j++;
            if (j == len) return 1;
        }
        slot = (slot + 1) & w->mask;
    }
}

static PyObject *word_stats(PyObject *self, PyObject *args) {
    PyObject *text, *common;
    Py_ssize_t window, ngram;
    if (!PyArg_ParseTuple(args, "UnnO:word_stats", &text, &window, &ngram, &common)) return NULL;
    if (window < 1 || ngram < 1) {
        PyErr_SetString(PyExc_ValueError, "window and ngram must be >= 1");
        return NULL;
    }
    if (PyUnicode_GET_LENGTH(text) >= INT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "text too long for the kernel");
        return NULL;
    }
    Text s;
    if (text_open(&s, text) < 0) return NULL;
    Py_ssize_t len = s.len;

    PyObject *result = NULL, *wins = NULL, *tail = NULL, *rare_obj = NULL, *words_obj = NULL, *grams_obj = NULL;
    Span *spans = NULL, *types = NULL;
    int32_t *ids = NULL, *slots = NULL, *cnt = NULL, *stamp = NULL, *order = NULL, *gslots = NULL;
    uint64_t *type_hash = NULL;
    Py_UCS4 *tail_buf = NULL;

    /* 1. tokens (core.text._WORD): runs of letters/digits, and apostrophes between two of them */
    Py_ssize_t cap = 64, n = 0;
    spans = PyMem_Malloc(cap * sizeof(Span));
    if (!spans) goto nomem;
    Py_ssize_t i = 0;
    while (i < len) {
        while (i < len && !is_alnum(at(&s, i))) i++; /* a kept apostrophe follows a letter/digit */
        if (i >= len) break;
        Py_ssize_t start = i;
        while (i < len) {
            Py_UCS4 c = at(&s, i);
            if (is_alnum(c)) {
                i++;
            } else if (is_apostrophe(c) && i + 1 < len && is_alnum(at(&s, i + 1))) {
                i++; /* at(i - 1) is a letter/digit: we are inside a run */
            } else {
                break;
            }
        }
        if (n == cap) {
            cap *= 2;
            Span *grown = PyMem_Realloc(spans, cap * sizeof(Span));
            if (!grown) goto nomem;
            spans = grown;
        }
        spans[n].start = start;
        spans[n].len = i - start;
        n++;
    }

    /* 2. intern: a type id per token, ids in order of first appearance */
    size_t tsize = table_size(n), tmask = tsize - 1;
    ids = PyMem_Malloc((n ? n : 1) * sizeof(int32_t));
    types = PyMem_Malloc((n ? n : 1) * sizeof(Span));
    type_hash = PyMem_Malloc((n ? n : 1) * sizeof(uint64_t));
    slots = PyMem_Malloc(tsize * sizeof(int32_t));
    if (!ids || !types || !type_hash || !slots) goto nomem;
    memset(slots, 0xff, tsize * sizeof(int32_t));
    Py_ssize_t n_types = 0;
    for (Py_ssize_t t = 0; t < n; t++) {
        Py_ssize_t ws = spans[t].start, wl = spans[t].len;
        uint64_t h = hash_span(&s, ws, wl);
        size_t slot = (size_t)h & tmask;
        for (;;) {
            int32_t id = slots[slot];
            if (id < 0) {
                id = (int32_t)n_types++;
                slots[slot] = id;
                types[id] = spans[t];
                type_hash[id] = h;
                ids[t] = id;
                break;
            }
            if (type_hash[id] == h && types[id].len == wl && same_span(&s, types[id].start, ws, wl)) {
                ids[t] = id;
                break;
            }
            slot = (slot + 1) & tmask;
        }
    }

    /* 3. full windows: counts of each distinct token in order of first appearance */
    Py_ssize_t nwin = n / window;
    wins = PyList_New(nwin);
    if (!wins) goto fail;
    if (nwin) {
        cnt = PyMem_Malloc(n_types * sizeof(int32_t));
        stamp = PyMem_Malloc(n_types * sizeof(int32_t));
        order = PyMem_Malloc(window * sizeof(int32_t));
        if (!cnt || !stamp || !order) goto nomem;
        memset(stamp, 0xff, n_types * sizeof(int32_t));
        for (Py_ssize_t w = 0; w < nwin; w++) {
            Py_ssize_t k = 0;
            for (Py_ssize_t t = w * window; t < (w + 1) * window; t++) {
                int32_t id = ids[t];
                if (stamp[id] != (int32_t)w) {
                    stamp[id] = (int32_t)w;
                    cnt[id] = 0;
                    order[k++] = id;
                }
                cnt[id]++;
            }
            PyObject *counts = PyTuple_New(k);
            if (!counts) goto fail;
            PyList_SET_ITEM(wins, w, counts);
            for (Py_ssize_t j = 0; j < k; j++) {
                PyObject *c = PyLong_FromLong(cnt[order[j]]);
                if (!c) goto fail;
                PyTuple_SET_ITEM(counts, j, c);
            }
        }
    }

    /* 4. distinct word n-grams */
    Py_ssize_t total = n - ngram + 1;
    if (total < 1) {
        grams_obj = Py_NewRef(Py_None);
    } else {
        size_t gsize = table_size(total), gmask = gsize - 1;
        gslots = PyMem_Malloc(gsize * sizeof(int32_t));
        if (!gslots) goto nomem;
        memset(gslots, 0xff, gsize * sizeof(int32_t));
        Py_ssize_t distinct = 0;
        for (Py_ssize_t g = 0; g < total; g++) {
            uint64_t h = 0x9e3779b97f4a7c15ULL;
            for (Py_ssize_t j = 0; j < ngram; j++) h = mix64(h ^ (uint64_t)ids[g + j]) + (uint64_t)j;
            size_t slot = (size_t)h & gmask;
            for (;;) {
                int32_t first = gslots[slot];
                if (first < 0) {
                    gslots[slot] = (int32_t)g;
                    distinct++;
                    break;
                }
                if (memcmp(ids + first, ids + g, ngram * sizeof(int32_t)) == 0) break;
                slot = (slot + 1) & gmask;
            }
        }
        grams_obj = PyLong_FromSsize_t(distinct);
        if (!grams_obj) goto fail;
    }

    /* 5. rare words: alphabetic types not in `common`; words: types in `common` plus rare */
    if (common == Py_None) {
        rare_obj = Py_NewRef(Py_None);
        words_obj = Py_NewRef(Py_None);
    } else {
        Py_ssize_t rare = 0, uncommon = 0;
        WordTable *table = NULL;
        if (PyFrozenSet_CheckExact(common) && !(table = table_for(common))) goto fail;
        for (Py_ssize_t id = 0; id < n_types; id++) {
            Py_ssize_t ws = types[id].start, wl = types[id].len;
            int in;
            if (table) {
                in = table_has(table, &s, ws, wl, type_hash[id]);
            } else { /* a set that may change, or another container: ask it */
                PyObject *word = PyUnicode_Substring(text, ws, ws + wl);
                if (!word) goto fail;
                in = PySequence_Contains(common, word);
                Py_DECREF(word);
                if (in < 0) goto fail;
            }
            if (!in) {
                uncommon++;
                int alpha = 1;
                for (Py_ssize_t j = ws; j < ws + wl && alpha; j++) alpha = is_alpha(at(&s, j));
                rare += alpha;
            }
        }
        rare_obj = PyLong_FromSsize_t(rare);
        words_obj = PyLong_FromSsize_t(n_types - uncommon + rare);
        if (!rare_obj || !words_obj) goto fail;
    }

    /* 6. the tail: tokens after the last full window, space-joined */
    Py_ssize_t first = nwin * window, tail_len = 0;
    for (Py_ssize_t t = first; t < n; t++) tail_len += spans[t].len + (t > first);
    if (s.ascii) {
        tail = PyUnicode_New(tail_len, 127);
        if (!tail) goto fail;
        char *out = (char *)PyUnicode_DATA(tail);
        for (Py_ssize_t t = first; t < n; t++) {
            if (t > first) *out++ = ' ';
            memcpy(out, s.ascii + spans[t].start, spans[t].len);
            out += spans[t].len;
        }
    } else {
        tail_buf = PyMem_Malloc((tail_len ? tail_len : 1) * sizeof(Py_UCS4));
        if (!tail_buf) goto nomem;
        Py_UCS4 *out = tail_buf;
        for (Py_ssize_t t = first; t < n; t++) {
            if (t > first) *out++ = ' ';
            memcpy(out, s.ucs4 + spans[t].start, spans[t].len * sizeof(Py_UCS4));
            out += spans[t].len;
        }
        tail = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, tail_buf, tail_len);
        if (!tail) goto fail;
    }

    result = Py_BuildValue("(nOnOOOO)", n, wins, n_types, grams_obj, rare_obj, words_obj, tail);
    goto done;
nomem:
    PyErr_NoMemory();
fail:
    result = NULL;
done:
    Py_XDECREF(wins);
    Py_XDECREF(tail);
    Py_XDECREF(rare_obj);
    Py_XDECREF(words_obj);
    Py_XDECREF(grams_obj);
    PyMem_Free(spans);
    PyMem_Free(types);
    PyMem_Free(type_hash);
    PyMem_Free(ids);
    PyMem_Free(slots);
    PyMem_Free(cnt);
    PyMem_Free(stamp);
    PyMem_Free(order);
    PyMem_Free(gslots);
    PyMem_Free(tail_buf);
    text_close(&s);
    return result;
}

static PyObject *sentence_lengths(PyObject *self, PyObject *arg) {
    Text s;
    if (text_open_arg(&s, arg, "sentence_lengths") < 0) return NULL;
    Py_ssize_t len = s.len;

    /* whitespace as signals.sentence_lengths has it: runs become one space where the text holds
       a newline, a tab or two spaces in a row; otherwise only the ends are stripped */
    int collapse = 0;
    for (Py_ssize_t i = 0; i < len && !collapse; i++) {
        Py_UCS4 c = at(&s, i);
        collapse = c == '\n' || c == '\t' || (c == ' ' && i + 1 < len && at(&s, i + 1) == ' ');
    }
    Py_UCS4 *t = PyMem_Malloc((len ? len : 1) * sizeof(Py_UCS4));
    if (!t) {
        text_close(&s);
        return PyErr_NoMemory();
    }
    Py_ssize_t m = 0, a = 0, b = len;
    while (a < b && is_space(at(&s, a))) a++;
    while (b > a && is_space(at(&s, b - 1))) b--;
    for (Py_ssize_t i = a; i < b; i++) {
        Py_UCS4 c = at(&s, i);
        if (collapse && is_space(c)) {
            if (m && t[m - 1] != ' ') t[m++] = ' ';
        } else {
            t[m++] = c;
        }
    }
    text_close(&s);

    /* sentence ends: a run of stops followed by whitespace (taken with it) or by the end */
    PyObject *lengths = PyList_New(0);
    if (!lengths) {
        PyMem_Free(t);
        return NULL;
    }
    Py_ssize_t start = 0, spaces = 0, i = 0;
    for (;;) {
        Py_ssize_t end = -1;
        while (i < m) {
            if (is_stop(t[i])) {
                Py_ssize_t j = i;
                while (j < m && is_stop(t[j])) j++;
                if (j == m) {
                    end = m;
                } else if (is_space(t[j])) {
                    while (j < m && is_space(t[j])) {
                        spaces += t[j] == ' ';
                        j++;
                    }
                    end = j;
                }
                i = j;
                if (end >= 0) break;
            } else {
                spaces += t[i] == ' ';
                i++;
            }
        }
        if (end < 0) end = m; /* the text after the last sentence end */
        if (end > start) {
            PyObject *v = PyLong_FromSsize_t(spaces + (t[end - 1] == ' ' ? 0 : 1));
            if (!v || PyList_Append(lengths, v) < 0) {
                Py_XDECREF(v);
                Py_DECREF(lengths);
                PyMem_Free(t);
                return NULL;
            }
            Py_DECREF(v);
        }
        if (end >= m) break;
        start = end;
        spaces = 0;
    }
    PyMem_Free(t);
    return lengths;
}

static PyObject *word_punct_join(PyObject *self, PyObject *arg) {
    Text s;
    if (text_open_arg(&s, arg, "word_punct_join") < 0) return NULL;
    Py_ssize_t len = s.len;
    /* at most 2 output characters per input character */
    Py_UCS4 *out = PyMem_Malloc((len ? 2 * len : 1) * sizeof(Py_UCS4));
    if (!out) {
        text_close(&s);
        return PyErr_NoMemory();
    }
    Py_ssize_t m = 0, i = 0;
    while (i < len) {
        Py_UCS4 c = at(&s, i);
        if (is_space(c)) {
            i++;
            continue;
        }
        if (m) out[m++] = ' ';
        if (is_word(c)) {
            while (i < len && is_word(at(&s, i))) out[m++] = at(&s, i++);
        } else {
            out[m++] = c;
            i++;
        }
    }
    text_close(&s);
    PyObject *joined = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, out, m);
    PyMem_Free(out);
    return joined;
}

static PyMethodDef methods[] = {
    {"word_stats", word_stats, METH_VARARGS, "Tokens of lower-cased text and what the cheap signals count on them."},
    {"sentence_lengths", sentence_lengths, METH_O, "Words per sentence, as signals.sentence_lengths counts them."},
    {"word_punct_join", word_punct_join, METH_O, "\" \".join(re.findall(r\"\\w+|[^\\w\\s]\", text)): the classifier's 'words' view."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_textkernel", "collapseguard's compiled text kernel (see core/text.py).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__textkernel(void) {
    PyObject *mod = PyModule_Create(&module);
    if (mod && PyModule_AddIntConstant(mod, "VERSION", KERNEL_VERSION) < 0) {
        Py_DECREF(mod);
        return NULL;
    }
    return mod;
}
