/*
 * A STAND-IN for Intel QAT's user-space library, for aigw's tests. It is NOT QAT and talks
 * to no hardware. It exports the few qatlib/usdm functions aigw dlopens, with the same C
 * signatures and structure layouts as the public headers (cpa.h, cpa_cy_im.h,
 * cpa_cy_ecdsa.h, icp_sal_user.h, icp_sal_poll.h, qae_mem.h), and does the ECDSA arithmetic
 * and RSA arithmetic in software with OpenSSL's libcrypto, so a handshake signed "on QAT" verifies at the
 * client exactly when aigw drove the API correctly.
 *
 * Behaviour for tests, from the environment:
 *   QAT_STANDIN_START_FAIL=1  icp_sal_userStart fails (no device / service).
 *   QAT_STANDIN_INSTANCES=N   N crypto instances (default 1; 0 = none).
 *   QAT_STANDIN_FAIL=1        every signing call returns CPA_STATUS_FAIL.
 *   QAT_STANDIN_DELAY_MS=N    every signing call takes N ms more (a slow device).
 *
 * Built by the tests: cc -shared -fPIC -O2 qat_standin.c -o libqat_standin.so -lcrypto
 */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/bn.h>
#include <openssl/ec.h>

typedef int32_t CpaStatus;
typedef int CpaBoolean;
typedef void *CpaInstanceHandle;
typedef uint64_t (*CpaVirtualToPhysical)(void *);

#define CPA_STATUS_SUCCESS 0
#define CPA_STATUS_FAIL (-1)
#define CPA_STATUS_INVALID_PARAM (-4)

typedef struct {
    uint32_t dataLenInBytes;
    uint8_t *pData;
} CpaFlatBuffer;

typedef struct {
    CpaFlatBuffer xg, yg, n, q, a, b, k, m, d;
    int fieldType;
} CpaCyEcdsaSignRSOpData;

typedef struct {
    CpaFlatBuffer modulusN, privateExponentD;
} CpaCyRsaPrivateKeyRep1;

typedef struct {
    CpaFlatBuffer prime1P, prime2Q, exponent1Dp, exponent2Dq, coefficientQInv;
} CpaCyRsaPrivateKeyRep2;

typedef struct {
    int version;
    int privateKeyRepType;
    CpaCyRsaPrivateKeyRep1 privateKeyRep1;
    CpaCyRsaPrivateKeyRep2 privateKeyRep2;
} CpaCyRsaPrivateKey;

typedef struct {
    CpaCyRsaPrivateKey *pRecipientPrivateKey;
    CpaFlatBuffer inputData;
} CpaCyRsaDecryptOpData;

static int instance_tokens[64];

static int env_int(const char *name, int dflt) {
    const char *v = getenv(name);
    return v && *v ? atoi(v) : dflt;
}

CpaStatus icp_sal_userStart(const char *name) {
    (void)name;
    return env_int("QAT_STANDIN_START_FAIL", 0) ? CPA_STATUS_FAIL : CPA_STATUS_SUCCESS;
}

CpaStatus icp_sal_userStop(void) { return CPA_STATUS_SUCCESS; }

CpaStatus cpaCyGetNumInstances(uint16_t *n) {
    int count = env_int("QAT_STANDIN_INSTANCES", 1);
    *n = (uint16_t)(count < 0 ? 0 : count > 64 ? 64 : count);
    return CPA_STATUS_SUCCESS;
}

CpaStatus cpaCyGetInstances(uint16_t n, CpaInstanceHandle *out) {
    if (n > 64) return CPA_STATUS_INVALID_PARAM;
    for (uint16_t i = 0; i < n; i++) out[i] = &instance_tokens[i];
    return CPA_STATUS_SUCCESS;
}

CpaStatus cpaCySetAddressTranslation(CpaInstanceHandle h, CpaVirtualToPhysical f) {
    (void)h;
    return f ? CPA_STATUS_SUCCESS : CPA_STATUS_INVALID_PARAM;
}

CpaStatus cpaCyStartInstance(CpaInstanceHandle h) { return h ? CPA_STATUS_SUCCESS : CPA_STATUS_FAIL; }
CpaStatus cpaCyStopInstance(CpaInstanceHandle h) { (void)h; return CPA_STATUS_SUCCESS; }

/* Synchronous requests complete inside the call; there is nothing to poll. */
CpaStatus icp_sal_CyPollInstance(CpaInstanceHandle h, uint32_t quota) {
    (void)h; (void)quota;
    return CPA_STATUS_SUCCESS;
}

void *qaeMemAllocNUMA(size_t size, int node, size_t align) {
    (void)node;
    if (align < sizeof(void *)) align = sizeof(void *);
    void *p = NULL;
    return posix_memalign(&p, align, size) == 0 ? p : NULL;
}

void qaeMemFreeNUMA(void **p) {
    if (p && *p) { free(*p); *p = NULL; }
}

uint64_t qaeVirtToPhysNUMA(void *p) { return (uint64_t)(uintptr_t)p; }

static void slow_down(void) {
    int delay = env_int("QAT_STANDIN_DELAY_MS", 0);
    if (delay > 0) {
        struct timespec ts = { delay / 1000, (long)(delay % 1000) * 1000000L };
        nanosleep(&ts, NULL);
    }
}

static BIGNUM *bn(const CpaFlatBuffer *b) { return BN_bin2bn(b->pData, (int)b->dataLenInBytes, NULL); }

/* r = x(kG) mod n, s = k^-1 (m + r d) mod n, over the curve the caller describes. */
CpaStatus cpaCyEcdsaSignRS(CpaInstanceHandle h, const void *cb, void *tag,
                           const CpaCyEcdsaSignRSOpData *op, CpaBoolean *ok,
                           CpaFlatBuffer *r_out, CpaFlatBuffer *s_out) {
    (void)tag;
    if (!h || cb || !op || !ok || !r_out || !s_out || op->fieldType != 1) return CPA_STATUS_INVALID_PARAM;
    slow_down();
    if (env_int("QAT_STANDIN_FAIL", 0)) return CPA_STATUS_FAIL;
    CpaStatus status = CPA_STATUS_FAIL;
    BN_CTX *ctx = BN_CTX_new();
    BIGNUM *p = bn(&op->q), *a = bn(&op->a), *b = bn(&op->b), *n = bn(&op->n);
    BIGNUM *gx = bn(&op->xg), *gy = bn(&op->yg), *k = bn(&op->k), *m = bn(&op->m), *d = bn(&op->d);
    BIGNUM *x = BN_new(), *r = BN_new(), *s = BN_new(), *kinv = BN_new(), *t = BN_new();
    EC_GROUP *group = EC_GROUP_new_curve_GFp(p, a, b, ctx);
    EC_POINT *g = group ? EC_POINT_new(group) : NULL, *R = group ? EC_POINT_new(group) : NULL;
    if (g && R && EC_POINT_set_affine_coordinates(group, g, gx, gy, ctx)
        && EC_GROUP_set_generator(group, g, n, BN_value_one())
        && EC_POINT_mul(group, R, k, NULL, NULL, ctx)
        && EC_POINT_get_affine_coordinates(group, R, x, NULL, ctx)
        && BN_nnmod(r, x, n, ctx)
        && BN_mod_inverse(kinv, k, n, ctx)
        && BN_mod_mul(t, r, d, n, ctx)
        && BN_mod_add(t, t, m, n, ctx)
        && BN_mod_mul(s, kinv, t, n, ctx)
        && BN_bn2binpad(r, r_out->pData, (int)r_out->dataLenInBytes) >= 0
        && BN_bn2binpad(s, s_out->pData, (int)s_out->dataLenInBytes) >= 0) {
        *ok = !BN_is_zero(r) && !BN_is_zero(s);
        status = CPA_STATUS_SUCCESS;
    }
    EC_POINT_free(g); EC_POINT_free(R); EC_GROUP_free(group);
    BN_free(p); BN_free(a); BN_free(b); BN_free(n); BN_free(gx); BN_free(gy);
    BN_free(k); BN_free(m); BN_free(d); BN_free(x); BN_free(r); BN_free(s); BN_free(kinv); BN_free(t);
    BN_CTX_free(ctx);
    return status;
}

/* The RSA signature primitive: out = in^d mod n, with the CRT quintuple for representation 2
 * (m1 = c^dP mod p, m2 = c^dQ mod q, h = qInv (m1 - m2) mod p, m = m2 + h q). */
CpaStatus cpaCyRsaDecrypt(CpaInstanceHandle h, const void *cb, void *tag,
                          const CpaCyRsaDecryptOpData *op, CpaFlatBuffer *out) {
    (void)tag;
    if (!h || cb || !op || !op->pRecipientPrivateKey || !out) return CPA_STATUS_INVALID_PARAM;
    const CpaCyRsaPrivateKey *key = op->pRecipientPrivateKey;
    if (key->version != 1 || (key->privateKeyRepType != 1 && key->privateKeyRepType != 2))
        return CPA_STATUS_INVALID_PARAM;
    slow_down();
    if (env_int("QAT_STANDIN_FAIL", 0)) return CPA_STATUS_FAIL;
    CpaStatus status = CPA_STATUS_FAIL;
    BN_CTX *ctx = BN_CTX_new();
    BIGNUM *c = bn(&op->inputData), *m = BN_new();
    int ok;
    if (key->privateKeyRepType == 1) {
        BIGNUM *n = bn(&key->privateKeyRep1.modulusN), *d = bn(&key->privateKeyRep1.privateExponentD);
        ok = BN_mod_exp(m, c, d, n, ctx);
        BN_free(n); BN_free(d);
    } else {
        const CpaCyRsaPrivateKeyRep2 *r = &key->privateKeyRep2;
        BIGNUM *p = bn(&r->prime1P), *q = bn(&r->prime2Q), *dp = bn(&r->exponent1Dp);
        BIGNUM *dq = bn(&r->exponent2Dq), *qinv = bn(&r->coefficientQInv);
        BIGNUM *m1 = BN_new(), *m2 = BN_new(), *t = BN_new();
        ok = BN_mod_exp(m1, c, dp, p, ctx) && BN_mod_exp(m2, c, dq, q, ctx)
            && BN_mod_sub(t, m1, m2, p, ctx) && BN_mod_mul(t, t, qinv, p, ctx)
            && BN_mul(t, t, q, ctx) && BN_add(m, m2, t);
        BN_free(p); BN_free(q); BN_free(dp); BN_free(dq); BN_free(qinv);
        BN_free(m1); BN_free(m2); BN_free(t);
    }
    if (ok && BN_bn2binpad(m, out->pData, (int)out->dataLenInBytes) >= 0) status = CPA_STATUS_SUCCESS;
    BN_free(c); BN_free(m);
    BN_CTX_free(ctx);
    return status;
}
