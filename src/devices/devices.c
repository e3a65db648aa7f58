/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The device registry: SPEC parsing ("KIND[,key=value...]") and the table of
 * simulated device kinds. vdx_device_create() and vdx_parse_bdf() are
 * declared in dext/device.h.
 *
 * Generic keys: bdf=[DDDD:]BB:DD.F (the identity; default 0000:00:01.0) and
 * iommu=... (consumed by the dext core, accepted and ignored here). Every
 * other key must be one the kind declares. Both functions are pure parsers
 * over the caller's string (plus the kind's create) and are thread-safe.
 */
#include "dext/device.h"
#include "devices/nvme.h"
#include "devices/simpci.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define SPEC_MAX      1024u
#define SPEC_MAX_OPTS 16u
#define LIST_MAX      256u

/* Add a kind here (and its simpci_kind in its own file). */
static const struct simpci_kind *const kinds[] = {
    &simpci_kind_testdev,
    &simpci_kind_nvme,
};
#define NUM_KINDS (sizeof(kinds) / sizeof(kinds[0]))

static const char *const generic_keys[] = {"bdf", "iommu", NULL};

/* A SPEC split in place: buf holds the NUL-separated pieces. */
struct spec {
    char buf[SPEC_MAX];
    const char *kind;
    struct simpci_kv kv[SPEC_MAX_OPTS];
    size_t nkv;
};

/* ---- BDF ------------------------------------------------------------------- */

/* Read 1..max hex digits; fails on none or on more than max. */
static int hex_field(const char **s, unsigned max, unsigned *out)
{
    unsigned v = 0, n = 0;
    const char *p = *s;

    for (;; p++, n++) {
        unsigned d;

        if (*p >= '0' && *p <= '9') {
            d = (unsigned)(*p - '0');
        } else if (*p >= 'a' && *p <= 'f') {
            d = (unsigned)(*p - 'a' + 10);
        } else if (*p >= 'A' && *p <= 'F') {
            d = (unsigned)(*p - 'A' + 10);
        } else {
            break;
        }
        if (n == max) {
            return -EINVAL;
        }
        v = v * 16 + d;
    }
    if (n == 0) {
        return -EINVAL;
    }
    *s = p;
    *out = v;
    return 0;
}

static int expect_char(const char **s, char c)
{
    if (**s != c) {
        return -EINVAL;
    }
    (*s)++;
    return 0;
}

int vdx_parse_bdf(const char *s, uint16_t *domain, uint8_t *bus, uint8_t *slot, uint8_t *fn)
{
    unsigned d = 0, b, sl, f;
    int rc;

    if (!s) {
        return -EINVAL;
    }
    if (strchr(s, ':') != strrchr(s, ':')) { /* two colons: domain present */
        rc = hex_field(&s, 4, &d);
        rc = rc ? rc : expect_char(&s, ':');
        if (rc) {
            return rc;
        }
    }
    rc = hex_field(&s, 2, &b);
    rc = rc ? rc : expect_char(&s, ':');
    rc = rc ? rc : hex_field(&s, 2, &sl);
    rc = rc ? rc : expect_char(&s, '.');
    rc = rc ? rc : hex_field(&s, 1, &f);
    if (rc || *s != '\0' || sl > 0x1f || f > 7) {
        return -EINVAL;
    }
    *domain = (uint16_t)d;
    *bus = (uint8_t)b;
    *slot = (uint8_t)sl;
    *fn = (uint8_t)f;
    return 0;
}

/* ---- SPEC ------------------------------------------------------------------ */

/* One "key=value" piece, split in place. */
static int split_opt(char *piece, struct simpci_kv *kv, char *err, size_t errlen)
{
    char *eq = strchr(piece, '=');

    if (!eq || eq == piece || eq[1] == '\0') {
        simpci_set_err(err, errlen, "bad option '%s' in device spec: expected key=value",
                       piece);
        return -EINVAL;
    }
    *eq = '\0';
    kv->key = piece;
    kv->val = eq + 1;
    return 0;
}

static int spec_split(const char *s, struct spec *sp, char *err, size_t errlen)
{
    char *save = NULL;
    char *piece;

    if (strlen(s) >= sizeof(sp->buf)) {
        simpci_set_err(err, errlen, "device spec too long (at most %u characters)",
                       SPEC_MAX - 1);
        return -EINVAL;
    }
    if (s[0] == '\0' || s[0] == ',' || strstr(s, ",,") || s[strlen(s) - 1] == ',') {
        simpci_set_err(err, errlen, "bad device spec '%s': expected KIND[,key=value...]",
                       s);
        return -EINVAL;
    }
    strcpy(sp->buf, s);
    sp->kind = strtok_r(sp->buf, ",", &save);
    sp->nkv = 0;
    while ((piece = strtok_r(NULL, ",", &save)) != NULL) {
        int rc;

        if (sp->nkv == SPEC_MAX_OPTS) {
            simpci_set_err(err, errlen, "too many options in device spec (at most %u)",
                           SPEC_MAX_OPTS);
            return -EINVAL;
        }
        rc = split_opt(piece, &sp->kv[sp->nkv], err, errlen);
        if (rc) {
            return rc;
        }
        sp->nkv++;
    }
    return 0;
}

static const struct simpci_kind *find_kind(const char *name)
{
    for (size_t i = 0; i < NUM_KINDS; i++) {
        if (strcmp(kinds[i]->name, name) == 0) {
            return kinds[i];
        }
    }
    return NULL;
}

static bool key_in(const char *const *keys, const char *key)
{
    for (; keys && *keys; keys++) {
        if (strcmp(*keys, key) == 0) {
            return true;
        }
    }
    return false;
}

/* Append the words of a NULL-terminated list to out, comma separated. */
static void append_list(char *out, size_t len, const char *const *words)
{
    for (; words && *words; words++) {
        size_t used = strlen(out);

        snprintf(out + used, len - used, "%s%s", used ? ", " : "", *words);
    }
}

static void list_kinds(char *out, size_t len)
{
    out[0] = '\0';
    for (size_t i = 0; i < NUM_KINDS; i++) {
        const char *const one[] = {kinds[i]->name, NULL};

        append_list(out, len, one);
    }
}

static int check_keys(const struct simpci_kind *k, const struct spec *sp, char *err,
                      size_t errlen)
{
    char valid[LIST_MAX] = "";

    append_list(valid, sizeof(valid), generic_keys);
    append_list(valid, sizeof(valid), k->keys);
    for (size_t i = 0; i < sp->nkv; i++) {
        const char *key = sp->kv[i].key;

        if (!key_in(generic_keys, key) && !key_in(k->keys, key)) {
            simpci_set_err(err, errlen, "%s: unknown option '%s' (valid: %s)", k->name, key,
                           valid);
            return -EINVAL;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(sp->kv[j].key, key) == 0) {
                simpci_set_err(err, errlen, "%s: option '%s' given twice", k->name, key);
                return -EINVAL;
            }
        }
    }
    return 0;
}

/* Take the generic keys out: bdf fills *out's identity, iommu is ignored. */
static int take_generic(struct spec *sp, struct vdx_device *out, char *err, size_t errlen)
{
    size_t n = 0;

    for (size_t i = 0; i < sp->nkv; i++) {
        const struct simpci_kv *kv = &sp->kv[i];

        if (strcmp(kv->key, "bdf") == 0 &&
            vdx_parse_bdf(kv->val, &out->domain, &out->bus, &out->slot, &out->fn)) {
            simpci_set_err(err, errlen,
                           "bdf=%s: expected [DDDD:]BB:DD.F in hex (device at most 1f, "
                           "function at most 7)",
                           kv->val);
            return -EINVAL;
        }
        if (!key_in(generic_keys, kv->key)) {
            sp->kv[n++] = *kv;
        }
    }
    sp->nkv = n;
    return 0;
}

int vdx_device_create(const char *spec, const struct vdx_dev_host *host,
                      struct vdx_device *out, char *err, size_t errlen)
{
    struct spec sp;
    struct vdx_device dev = {.domain = 0, .bus = 0, .slot = 1, .fn = 0};
    const struct simpci_kind *k;
    struct simpci_kind_args args;
    char bdf[16];
    int rc;

    if (!spec || !out) {
        simpci_set_err(err, errlen, "no device spec given");
        return -EINVAL;
    }
    rc = spec_split(spec, &sp, err, errlen);
    if (rc) {
        return rc;
    }
    k = find_kind(sp.kind);
    if (!k) {
        char valid[LIST_MAX];

        list_kinds(valid, sizeof(valid));
        simpci_set_err(err, errlen, "unknown device kind '%s' (valid: %s)", sp.kind, valid);
        return -EINVAL;
    }
    rc = check_keys(k, &sp, err, errlen);
    rc = rc ? rc : take_generic(&sp, &dev, err, errlen);
    if (rc) {
        return rc;
    }
    snprintf(bdf, sizeof(bdf), "%04x:%02x:%02x.%x", dev.domain, dev.bus, dev.slot, dev.fn);
    args = (struct simpci_kind_args){sp.kv, sp.nkv, host, bdf};
    rc = k->create(&args, &dev.dev, err, errlen);
    if (rc) {
        return rc;
    }
    dev.ops = k->ops;
    *out = dev;
    return 0;
}
