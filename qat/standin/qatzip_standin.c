/*
 * A TEST STAND-IN for QATzip, not QATzip: a small shared library that exports the qz*
 * functions aigw calls, with the signatures and struct layouts of qatzip.h (API 2.x), and
 * does the work with zlib on the CPU. The tests build it with `cc -shared ... -lz` and point
 * aigw at it (AIGW_QATZIP_LIBRARY), so the FFI path (loading, struct layouts, the session
 * life cycle, the stream API, return codes, fallback) runs without QAT hardware.
 *
 * Written for aigw from the header's declarations; the structs below repeat the header's
 * layouts so that a mismatch with aigw's Rust declarations shows up as QZ_PARAMS.
 *
 * Behaviour is steered by environment variables, read at each call:
 *   QATZIP_STANDIN_MODE = ok        (default) everything works
 *                       | no_hw     qzInit returns QZ_NOSW_NO_HW (no device, no software)
 *                       | init_fail qzSetupSessionDeflate returns QZ_FAIL
 *                       | buf_error qzCompressStream / qzDecompress return QZ_BUF_ERROR
 *                       | hw_lost   qzCompressStream / qzDecompress return QZ_NOSW_NO_HW
 *   QATZIP_STANDIN_FAIL_AFTER = N   a session's (N+1)th and later compress calls return QZ_FAIL
 * Counters of calls are exported through qz_standin_count() for the tests.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define QZ_OK 0
#define QZ_DUPLICATE 1
#define QZ_PARAMS (-1)
#define QZ_FAIL (-2)
#define QZ_BUF_ERROR (-3)
#define QZ_DATA_ERROR (-4)
#define QZ_NOSW_NO_HW (-101)

#define QZ_DIR_COMPRESS 0
#define QZ_DIR_DECOMPRESS 1
#define QZ_DIR_BOTH 2
#define QZ_DEFLATE_4B 0
#define QZ_DEFLATE_GZIP 1
#define QZ_DEFLATE_GZIP_EXT 2
#define QZ_DEFLATE_RAW 3
#define QZ_FMT_NUM 4

typedef struct QzSession_S {
    signed long int hw_session_stat;
    int thd_sess_stat;
    void *internal;
    unsigned long total_in;
    unsigned long total_out;
} QzSession_T;

typedef struct QzSessionParamsCommon_S {
    int direction;
    unsigned int comp_lvl;
    unsigned char comp_algorithm;
    unsigned int max_forks;
    unsigned char sw_backup;
    unsigned int hw_buff_sz;
    unsigned int strm_buff_sz;
    unsigned int input_sz_thrshold;
    unsigned int req_cnt_thrshold;
    unsigned int wait_cnt_thrshold;
    int polling_mode;
    unsigned int is_sensitive_mode;
} QzSessionParamsCommon_T;

typedef struct QzSessionParamsDeflate_S {
    QzSessionParamsCommon_T common_params;
    int huffman_hdr;
    int data_fmt;
} QzSessionParamsDeflate_T;

typedef struct QzStream_S {
    unsigned int in_sz;
    unsigned int out_sz;
    unsigned char *in;
    unsigned char *out;
    unsigned int pending_in;
    unsigned int pending_out;
    int crc_type;
    unsigned int crc_32;
    unsigned long long reserved;
    void *opaque;
} QzStream_T;

struct session {
    unsigned long calls;
    int direction;
    int level;
    int data_fmt;
};

enum { C_INIT, C_SETUP, C_COMPRESS, C_END, C_DECOMPRESS, C_TEARDOWN, C_CLOSE, C_N };
static unsigned long counts[C_N];

unsigned long qz_standin_count(int which) { return which >= 0 && which < C_N ? counts[which] : 0; }

static int mode_is(const char *m) {
    const char *v = getenv("QATZIP_STANDIN_MODE");
    return v != NULL && strcmp(v, m) == 0;
}

int qzInit(QzSession_T *sess, unsigned char sw_backup) {
    (void)sw_backup;
    __atomic_add_fetch(&counts[C_INIT], 1, __ATOMIC_RELAXED);
    if (sess == NULL) return QZ_PARAMS;
    if (mode_is("no_hw")) {
        sess->hw_session_stat = QZ_NOSW_NO_HW;
        return QZ_NOSW_NO_HW;
    }
    sess->hw_session_stat = QZ_OK;
    return QZ_OK;
}

int qzGetDefaultsDeflate(QzSessionParamsDeflate_T *p) {
    if (p == NULL) return QZ_PARAMS;
    memset(p, 0, sizeof *p);
    p->common_params.direction = QZ_DIR_BOTH;
    p->common_params.comp_lvl = 1;
    p->common_params.comp_algorithm = 8;
    p->common_params.max_forks = 3;
    p->common_params.sw_backup = 1;
    p->common_params.hw_buff_sz = 64 * 1024;
    p->common_params.strm_buff_sz = 64 * 1024;
    p->common_params.input_sz_thrshold = 1024;
    p->common_params.req_cnt_thrshold = 32;
    p->common_params.wait_cnt_thrshold = 8;
    p->huffman_hdr = 0;
    p->data_fmt = QZ_DEFLATE_GZIP_EXT;
    return QZ_OK;
}

int qzSetupSessionDeflate(QzSession_T *sess, QzSessionParamsDeflate_T *p) {
    __atomic_add_fetch(&counts[C_SETUP], 1, __ATOMIC_RELAXED);
    if (sess == NULL || p == NULL) return QZ_PARAMS;
    if (sess->internal != NULL) return QZ_DUPLICATE;
    /* The checks a real library makes; garbage from a layout mismatch fails them. */
    unsigned int b = p->common_params.hw_buff_sz;
    if (p->common_params.direction < 0 || p->common_params.direction > QZ_DIR_BOTH ||
        p->common_params.comp_lvl < 1 || p->common_params.comp_lvl > 9 ||
        p->common_params.comp_algorithm != 8 || p->data_fmt < 0 || p->data_fmt >= QZ_FMT_NUM ||
        b < 1024 || b > 512 * 1024 || (b & (b - 1)) != 0 || p->huffman_hdr < 0 ||
        p->huffman_hdr > 1)
        return QZ_PARAMS;
    if (mode_is("init_fail")) return QZ_FAIL;
    struct session *s = calloc(1, sizeof *s);
    if (s == NULL) return QZ_FAIL;
    s->direction = p->common_params.direction;
    s->level = (int)p->common_params.comp_lvl;
    s->data_fmt = p->data_fmt;
    sess->internal = s;
    return QZ_OK;
}

/* Raw deflate (or gzip) through zlib; the z_stream lives behind strm->opaque. */
int qzCompressStream(QzSession_T *sess, QzStream_T *strm, unsigned int last) {
    __atomic_add_fetch(&counts[C_COMPRESS], 1, __ATOMIC_RELAXED);
    if (sess == NULL || strm == NULL || sess->internal == NULL) return QZ_PARAMS;
    struct session *s = sess->internal;
    unsigned long n = ++s->calls;
    if (s->direction == QZ_DIR_DECOMPRESS) return QZ_PARAMS;
    if (mode_is("buf_error")) return QZ_BUF_ERROR;
    if (mode_is("hw_lost")) return QZ_NOSW_NO_HW;
    const char *fa = getenv("QATZIP_STANDIN_FAIL_AFTER");
    if (fa != NULL && n > strtoul(fa, NULL, 10)) return QZ_FAIL;
    z_stream *z = strm->opaque;
    if (z == NULL) {
        z = calloc(1, sizeof *z);
        if (z == NULL) return QZ_FAIL;
        int bits = s->data_fmt == QZ_DEFLATE_RAW ? -15 : 31;
        if (deflateInit2(z, s->level, Z_DEFLATED, bits, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
            free(z);
            return QZ_FAIL;
        }
        strm->opaque = z;
    }
    z->next_in = strm->in;
    z->avail_in = strm->in_sz;
    z->next_out = strm->out;
    z->avail_out = strm->out_sz;
    int rc = deflate(z, last ? Z_FINISH : Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) return QZ_FAIL;
    strm->in_sz -= z->avail_in;
    strm->out_sz -= z->avail_out;
    strm->pending_in = 0;
    strm->pending_out = (last && rc != Z_STREAM_END) ? 1 : 0;
    sess->total_in += strm->in_sz;
    sess->total_out += strm->out_sz;
    return QZ_OK;
}

int qzEndStream(QzSession_T *sess, QzStream_T *strm) {
    __atomic_add_fetch(&counts[C_END], 1, __ATOMIC_RELAXED);
    if (sess == NULL || strm == NULL) return QZ_PARAMS;
    z_stream *z = strm->opaque;
    if (z != NULL) {
        deflateEnd(z);
        free(z);
        strm->opaque = NULL;
    }
    return QZ_OK;
}

/* One-shot: every gzip member of src into dest; QZ_BUF_ERROR when dest is too small. */
int qzDecompress(QzSession_T *sess, const unsigned char *src, unsigned int *src_len,
                 unsigned char *dest, unsigned int *dest_len) {
    __atomic_add_fetch(&counts[C_DECOMPRESS], 1, __ATOMIC_RELAXED);
    if (sess == NULL || sess->internal == NULL || src == NULL || src_len == NULL ||
        dest == NULL || dest_len == NULL)
        return QZ_PARAMS;
    struct session *s = sess->internal;
    if (s->direction == QZ_DIR_COMPRESS) return QZ_PARAMS;
    if (mode_is("buf_error")) return QZ_BUF_ERROR;
    if (mode_is("hw_lost")) return QZ_NOSW_NO_HW;
    z_stream z;
    memset(&z, 0, sizeof z);
    int bits = s->data_fmt == QZ_DEFLATE_RAW ? -15 : 31;
    if (inflateInit2(&z, bits) != Z_OK) return QZ_FAIL;
    z.next_in = (unsigned char *)src;
    z.avail_in = *src_len;
    z.next_out = dest;
    z.avail_out = *dest_len;
    int result = QZ_OK;
    for (;;) {
        int rc = inflate(&z, Z_NO_FLUSH);
        if (rc == Z_STREAM_END) {
            if (z.avail_in == 0) break;
            inflateReset(&z); /* next gzip member */
            continue;
        }
        if (rc == Z_OK) continue;
        if (rc == Z_BUF_ERROR && z.avail_out == 0) {
            result = QZ_BUF_ERROR;
        } else {
            result = QZ_DATA_ERROR;
        }
        break;
    }
    *src_len -= z.avail_in;
    *dest_len -= z.avail_out;
    inflateEnd(&z);
    return result;
}

int qzTeardownSession(QzSession_T *sess) {
    __atomic_add_fetch(&counts[C_TEARDOWN], 1, __ATOMIC_RELAXED);
    if (sess == NULL) return QZ_PARAMS;
    free(sess->internal);
    sess->internal = NULL;
    return QZ_OK;
}

int qzClose(QzSession_T *sess) {
    __atomic_add_fetch(&counts[C_CLOSE], 1, __ATOMIC_RELAXED);
    return sess == NULL ? QZ_PARAMS : QZ_OK;
}
