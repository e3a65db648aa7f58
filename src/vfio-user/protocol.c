/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The vfio-user wire format (protocol.h): pure decoders, validators and
 * encoders. No I/O and no global state (json-c allocates while parsing a
 * VERSION): fuzz targets call these directly.
 */
#include "vfio-user/protocol.h"
#include "common/le.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#define OFF(type, field) offsetof(struct type, field)

static bool is_pow2(uint64_t v)
{
    return v != 0 && (v & (v - 1)) == 0;
}

/* ---- Header ---------------------------------------------------------------- */

int vdx_vu_hdr_decode(const void *buf, size_t len, struct vdx_vu_hdr *hdr)
{
    const uint8_t *p = buf;

    if (len < VDX_VU_HDR_SIZE) {
        return -ENODATA;
    }
    hdr->id = get_le16(p + OFF(vdx_vu_hdr, id));
    hdr->cmd = get_le16(p + OFF(vdx_vu_hdr, cmd));
    hdr->size = get_le32(p + OFF(vdx_vu_hdr, size));
    hdr->flags = get_le32(p + OFF(vdx_vu_hdr, flags));
    hdr->error = get_le32(p + OFF(vdx_vu_hdr, error));
    return hdr->size < VDX_VU_HDR_SIZE ? -EBADMSG : 0;
}

/* Write a reply header; the caller has checked that cap holds `size`. */
static void put_rep_hdr(uint8_t *p, uint16_t id, uint16_t cmd, uint32_t size,
                        uint32_t flags, uint32_t err)
{
    put_le16(p + OFF(vdx_vu_hdr, id), id);
    put_le16(p + OFF(vdx_vu_hdr, cmd), cmd);
    put_le32(p + OFF(vdx_vu_hdr, size), size);
    put_le32(p + OFF(vdx_vu_hdr, flags), VDX_VU_F_TYPE_REPLY | flags);
    put_le32(p + OFF(vdx_vu_hdr, error), err);
}

/* ---- VERSION --------------------------------------------------------------- */

/* A non-negative JSON integer no larger than max. json-c clamps integers
 * beyond 64 bits to UINT64_MAX, so that value counts as out of range. */
static int json_uint(struct json_object *o, uint64_t max, uint64_t *out)
{
    if (!json_object_is_type(o, json_type_int) || json_object_get_int64(o) < 0) {
        return -EINVAL;
    }
    *out = json_object_get_uint64(o);
    return *out > max || *out == UINT64_MAX ? -EINVAL : 0;
}

static int caps_u32(struct json_object *caps, const char *key, bool nonzero, uint32_t *out)
{
    struct json_object *o;
    uint64_t v;

    if (!json_object_object_get_ex(caps, key, &o)) {
        return 0;
    }
    if (json_uint(o, UINT32_MAX, &v) < 0 || (nonzero && v == 0)) {
        return -EINVAL;
    }
    *out = (uint32_t)v;
    return 0;
}

static int caps_pgsizes(struct json_object *caps, uint64_t *out)
{
    struct json_object *o;
    uint64_t v;

    if (!json_object_object_get_ex(caps, "pgsizes", &o)) {
        return 0;
    }
    if (json_uint(o, UINT64_MAX, &v) < 0 || v == 0) {
        return -EINVAL;
    }
    *out = v;
    return 0;
}

/* "write_multiple" (bool), "migration" (object), "twin_socket" (object). */
static int caps_others(struct json_object *caps, struct vdx_vu_caps *out)
{
    struct json_object *o, *sup;

    if (json_object_object_get_ex(caps, "write_multiple", &o)) {
        if (!json_object_is_type(o, json_type_boolean)) {
            return -EINVAL;
        }
        out->write_multiple = json_object_get_boolean(o);
    }
    if (json_object_object_get_ex(caps, "migration", &o) &&
        !json_object_is_type(o, json_type_object)) {
        return -EINVAL;
    }
    if (json_object_object_get_ex(caps, "twin_socket", &o)) {
        if (!json_object_is_type(o, json_type_object)) {
            return -EINVAL;
        }
        out->twin_socket = json_object_object_get_ex(o, "supported", &sup) &&
                           json_object_is_type(sup, json_type_boolean) &&
                           json_object_get_boolean(sup);
    }
    return 0;
}

static int caps_from_object(struct json_object *root, struct vdx_vu_caps *out)
{
    struct json_object *caps;
    int rc;

    if (!json_object_is_type(root, json_type_object)) {
        return -EINVAL;
    }
    if (!json_object_object_get_ex(root, "capabilities", &caps)) {
        return 0;
    }
    if (!json_object_is_type(caps, json_type_object)) {
        return -EINVAL;
    }
    rc = caps_u32(caps, "max_msg_fds", false, &out->max_msg_fds);
    if (rc == 0) {
        rc = caps_u32(caps, "max_data_xfer_size", true, &out->max_data_xfer_size);
    }
    if (rc == 0) {
        rc = caps_u32(caps, "max_dma_maps", false, &out->max_dma_maps);
    }
    if (rc == 0) {
        rc = caps_pgsizes(caps, &out->pgsizes);
    }
    return rc == 0 ? caps_others(caps, out) : rc;
}

/* Only JSON whitespace from `from` to `len`. */
static bool only_space(const char *s, size_t from, size_t len)
{
    for (size_t i = from; i < len; i++) {
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') {
            return false;
        }
    }
    return true;
}

int vdx_vu_caps_parse(const char *json, size_t len, struct vdx_vu_caps *caps)
{
    struct json_tokener *tok;
    struct json_object *root;
    struct vdx_vu_caps tmp = *caps;
    int rc = -EINVAL;

    if (len >= VDX_VU_CAPS_JSON_MAX) {
        return -E2BIG;
    }
    if (len == 0 || memchr(json, '\0', len) != NULL) {
        return -EINVAL;
    }
    tok = json_tokener_new_ex(8);
    if (tok == NULL) {
        return -ENOMEM;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    root = json_tokener_parse_ex(tok, json, (int)len);
    if (root != NULL && json_tokener_get_error(tok) == json_tokener_success &&
        only_space(json, json_tokener_get_parse_end(tok), len)) {
        rc = caps_from_object(root, &tmp);
    }
    json_object_put(root);
    json_tokener_free(tok);
    if (rc == 0) {
        *caps = tmp;
    }
    return rc;
}

int vdx_vu_version_decode(const void *buf, size_t len, struct vdx_vu_version_req *v)
{
    const uint8_t *p = buf;
    const char *json;
    size_t jlen;

    if (len < VDX_VU_VERSION_SIZE) {
        return -EINVAL;
    }
    memset(v, 0, sizeof(*v));
    v->major = get_le16(p + OFF(vdx_vu_version, major));
    v->minor = get_le16(p + OFF(vdx_vu_version, minor));
    v->caps.max_msg_fds = VDX_VU_DEF_MAX_MSG_FDS;
    v->caps.max_data_xfer_size = VDX_VU_DEF_MAX_XFER;
    v->caps.max_dma_maps = VDX_VU_DEF_MAX_DMA_MAPS;
    v->caps.pgsizes = VDX_VU_DEF_PGSIZES;
    if (v->major != VDX_VU_MAJOR) {
        return -ENOTSUP;
    }
    if (len == VDX_VU_VERSION_SIZE) {
        return 0;
    }
    json = (const char *)p + VDX_VU_VERSION_SIZE;
    jlen = len - VDX_VU_VERSION_SIZE;
    if (jlen > VDX_VU_CAPS_JSON_MAX) {
        return -E2BIG;
    }
    if (json[jlen - 1] != '\0') {
        return -EINVAL; /* the spec's string includes its NUL */
    }
    v->has_json = true;
    return vdx_vu_caps_parse(json, jlen - 1, &v->caps);
}

int vdx_vu_caps_negotiate(const struct vdx_vu_caps *client,
                          const struct vdx_vu_caps *server, struct vdx_vu_caps *out)
{
    memset(out, 0, sizeof(*out));
    out->max_msg_fds = server->max_msg_fds;
    out->max_data_xfer_size = client->max_data_xfer_size < server->max_data_xfer_size
                                  ? client->max_data_xfer_size
                                  : server->max_data_xfer_size;
    out->max_dma_maps = client->max_dma_maps < server->max_dma_maps ? client->max_dma_maps
                                                                    : server->max_dma_maps;
    out->pgsizes = client->pgsizes & server->pgsizes;
    /* write_multiple and twin_socket stay off: this server offers neither. */
    return out->pgsizes != 0 && out->max_data_xfer_size != 0 ? 0 : -EINVAL;
}

/* ---- Fixed-size commands --------------------------------------------------- */

int vdx_vu_dma_map_decode(const void *buf, size_t len, unsigned nfds,
                          struct vdx_vu_dma_map *m)
{
    const uint8_t *p = buf;

    if (len != VDX_VU_DMA_MAP_SIZE || nfds > 1) {
        return -EINVAL;
    }
    m->argsz = get_le32(p + OFF(vdx_vu_dma_map, argsz));
    m->flags = get_le32(p + OFF(vdx_vu_dma_map, flags));
    m->offset = get_le64(p + OFF(vdx_vu_dma_map, offset));
    m->iova = get_le64(p + OFF(vdx_vu_dma_map, iova));
    m->size = get_le64(p + OFF(vdx_vu_dma_map, size));
    if (m->argsz < VDX_VU_DMA_MAP_SIZE) {
        return -EINVAL;
    }
    if ((m->flags & ~VDX_VU_DMA_MAP_F_KNOWN) || !(m->flags & VDX_VU_DMA_MAP_F_KNOWN)) {
        return -EINVAL;
    }
    if (m->size == 0 || m->iova + m->size < m->iova) {
        return -EINVAL;
    }
    if (nfds == 1 ? m->offset + m->size < m->offset : m->offset != 0) {
        return -EINVAL; /* an offset needs an fd to be an offset into */
    }
    return 0;
}

int vdx_vu_dma_unmap_decode(const void *buf, size_t len, struct vdx_vu_dma_unmap *u)
{
    const uint8_t *p = buf;

    if (len != VDX_VU_DMA_UNMAP_SIZE) {
        return -EINVAL;
    }
    u->argsz = get_le32(p + OFF(vdx_vu_dma_unmap, argsz));
    u->flags = get_le32(p + OFF(vdx_vu_dma_unmap, flags));
    u->iova = get_le64(p + OFF(vdx_vu_dma_unmap, iova));
    u->size = get_le64(p + OFF(vdx_vu_dma_unmap, size));
    if (u->argsz < VDX_VU_DMA_UNMAP_SIZE || (u->flags & ~VDX_VU_DMA_UNMAP_F_KNOWN)) {
        return -EINVAL;
    }
    if (u->flags & VDX_VU_DMA_UNMAP_F_GET_DIRTY_BITMAP) {
        return -ENOTSUP;
    }
    if (u->flags & VDX_VU_DMA_UNMAP_F_ALL) {
        return u->iova == 0 && u->size == 0 ? 0 : -EINVAL;
    }
    return u->size != 0 && u->iova + u->size >= u->iova ? 0 : -EINVAL;
}

int vdx_vu_device_info_decode(const void *buf, size_t len, struct vdx_vu_device_info *req)
{
    const uint8_t *p = buf;

    if (len != VDX_VU_DEVICE_INFO_SIZE) {
        return -EINVAL;
    }
    req->argsz = get_le32(p + OFF(vdx_vu_device_info, argsz));
    req->flags = get_le32(p + OFF(vdx_vu_device_info, flags));
    req->num_regions = get_le32(p + OFF(vdx_vu_device_info, num_regions));
    req->num_irqs = get_le32(p + OFF(vdx_vu_device_info, num_irqs));
    return req->argsz >= VDX_VU_DEVICE_INFO_SIZE ? 0 : -EINVAL;
}

int vdx_vu_region_info_decode(const void *buf, size_t len, struct vdx_vu_region_info *req)
{
    const uint8_t *p = buf;

    if (len != VDX_VU_REGION_INFO_SIZE) {
        return -EINVAL;
    }
    req->argsz = get_le32(p + OFF(vdx_vu_region_info, argsz));
    req->flags = get_le32(p + OFF(vdx_vu_region_info, flags));
    req->index = get_le32(p + OFF(vdx_vu_region_info, index));
    req->cap_offset = get_le32(p + OFF(vdx_vu_region_info, cap_offset));
    req->size = get_le64(p + OFF(vdx_vu_region_info, size));
    req->offset = get_le64(p + OFF(vdx_vu_region_info, offset));
    return req->argsz >= VDX_VU_REGION_INFO_SIZE ? 0 : -EINVAL;
}

int vdx_vu_irq_info_decode(const void *buf, size_t len, struct vdx_vu_irq_info *req)
{
    const uint8_t *p = buf;

    if (len != VDX_VU_IRQ_INFO_SIZE) {
        return -EINVAL;
    }
    req->argsz = get_le32(p + OFF(vdx_vu_irq_info, argsz));
    req->flags = get_le32(p + OFF(vdx_vu_irq_info, flags));
    req->index = get_le32(p + OFF(vdx_vu_irq_info, index));
    req->count = get_le32(p + OFF(vdx_vu_irq_info, count));
    return req->argsz >= VDX_VU_IRQ_INFO_SIZE ? 0 : -EINVAL;
}

/* ---- SET_IRQS -------------------------------------------------------------- */

/* Exactly one bit of `group` set in flags, and it is returned in *bit. */
static bool one_bit_of(uint32_t flags, uint32_t group, uint32_t *bit)
{
    *bit = flags & group;
    return is_pow2(*bit);
}

static int set_irqs_flags_check(struct vdx_vu_irq_set_req *req)
{
    const uint32_t known = VDX_VU_IRQ_SET_DATA_MASK | VDX_VU_IRQ_SET_ACTION_MASK_ALL;

    if ((req->flags & ~known) ||
        !one_bit_of(req->flags, VDX_VU_IRQ_SET_DATA_MASK, &req->data) ||
        !one_bit_of(req->flags, VDX_VU_IRQ_SET_ACTION_MASK_ALL, &req->action)) {
        return -EINVAL;
    }
    if (req->count == 0) {
        /* Only "disable the whole index". */
        return req->data == VDX_VU_IRQ_SET_DATA_NONE &&
                       req->action == VDX_VU_IRQ_SET_ACTION_TRIGGER && req->start == 0
                   ? 0
                   : -EINVAL;
    }
    return req->start + req->count < req->start ? -EINVAL : 0;
}

/* Payload size and descriptors against the data type. */
static int set_irqs_data_check(struct vdx_vu_irq_set_req *req, const uint8_t *p, size_t len,
                               uint32_t argsz, unsigned nfds)
{
    if (argsz != len) {
        return -EINVAL;
    }
    if (req->data == VDX_VU_IRQ_SET_DATA_BOOL) {
        if (len - VDX_VU_IRQ_SET_SIZE != req->count || nfds != 0) {
            return -EINVAL;
        }
        req->bools = p + VDX_VU_IRQ_SET_SIZE;
        return 0;
    }
    if (len != VDX_VU_IRQ_SET_SIZE) {
        return -EINVAL;
    }
    if (req->data == VDX_VU_IRQ_SET_DATA_EVENTFD) {
        return nfds == 0 || nfds == req->count ? 0 : -EINVAL;
    }
    return nfds == 0 ? 0 : -EINVAL;
}

int vdx_vu_set_irqs_decode(const void *buf, size_t len, unsigned nfds,
                           struct vdx_vu_irq_set_req *req)
{
    const uint8_t *p = buf;
    uint32_t argsz;
    int rc;

    if (len < VDX_VU_IRQ_SET_SIZE) {
        return -EINVAL;
    }
    memset(req, 0, sizeof(*req));
    argsz = get_le32(p + OFF(vdx_vu_irq_set, argsz));
    req->flags = get_le32(p + OFF(vdx_vu_irq_set, flags));
    req->index = get_le32(p + OFF(vdx_vu_irq_set, index));
    req->start = get_le32(p + OFF(vdx_vu_irq_set, start));
    req->count = get_le32(p + OFF(vdx_vu_irq_set, count));
    req->nfds = nfds;
    rc = set_irqs_flags_check(req);
    if (rc < 0) {
        return rc;
    }
    return set_irqs_data_check(req, p, len, argsz, nfds);
}

/* ---- REGION_READ / REGION_WRITE -------------------------------------------- */

static int region_rw_decode(const uint8_t *p, size_t len, uint32_t max_xfer,
                            struct vdx_vu_region_rw_req *rw)
{
    if (len < VDX_VU_REGION_RW_SIZE) {
        return -EINVAL;
    }
    rw->offset = get_le64(p + OFF(vdx_vu_region_rw, offset));
    rw->region = get_le32(p + OFF(vdx_vu_region_rw, region));
    rw->count = get_le32(p + OFF(vdx_vu_region_rw, count));
    rw->data = NULL;
    if (rw->count > max_xfer) {
        return -E2BIG;
    }
    if (rw->count == 0 || rw->offset + rw->count < rw->offset) {
        return -EINVAL;
    }
    return 0;
}

int vdx_vu_region_read_decode(const void *buf, size_t len, uint32_t max_xfer,
                              struct vdx_vu_region_rw_req *rw)
{
    int rc = region_rw_decode(buf, len, max_xfer, rw);

    if (rc < 0) {
        return rc;
    }
    return len == VDX_VU_REGION_RW_SIZE ? 0 : -EINVAL;
}

int vdx_vu_region_write_decode(const void *buf, size_t len, uint32_t max_xfer,
                               struct vdx_vu_region_rw_req *rw)
{
    const uint8_t *p = buf;
    int rc = region_rw_decode(p, len, max_xfer, rw);

    if (rc < 0) {
        return rc;
    }
    if (len - VDX_VU_REGION_RW_SIZE != rw->count) {
        return -EINVAL;
    }
    rw->data = p + VDX_VU_REGION_RW_SIZE;
    return 0;
}

/* ---- Region description ---------------------------------------------------- */

static int sparse_area_check(const struct vdx_vu_region_desc *d,
                             const struct vdx_vu_sparse_area *a, uint64_t page)
{
    if (a->size == 0 || ((a->offset | a->size) & (page - 1))) {
        return -EINVAL;
    }
    if (a->offset > d->size || a->size > d->size - a->offset) {
        return -EINVAL;
    }
    return d->offset + a->offset < d->offset ? -EINVAL : 0;
}

int vdx_vu_region_desc_check(const struct vdx_vu_region_desc *d, uint64_t page)
{
    const uint32_t known =
        VDX_VU_REGION_F_READ | VDX_VU_REGION_F_WRITE | VDX_VU_REGION_F_MMAP;

    if (!is_pow2(page) || (d->flags & ~known) || d->nr_areas > VDX_VU_MAX_SPARSE_AREAS) {
        return -EINVAL;
    }
    if (d->nr_areas > 0 && (!(d->flags & VDX_VU_REGION_F_MMAP) || d->areas == NULL)) {
        return -EINVAL;
    }
    if ((d->flags & VDX_VU_REGION_F_MMAP) && (d->size == 0 || (d->offset & (page - 1)))) {
        return -EINVAL;
    }
    for (uint32_t i = 0; i < d->nr_areas; i++) {
        if (sparse_area_check(d, &d->areas[i], page) < 0) {
            return -EINVAL;
        }
    }
    return 0;
}

/* ---- Encoders -------------------------------------------------------------- */

int vdx_vu_enc_empty_rep(void *buf, size_t cap, uint16_t id, uint16_t cmd)
{
    if (cap < VDX_VU_HDR_SIZE) {
        return -EMSGSIZE;
    }
    put_rep_hdr(buf, id, cmd, VDX_VU_HDR_SIZE, 0, 0);
    return (int)VDX_VU_HDR_SIZE;
}

int vdx_vu_enc_error_rep(void *buf, size_t cap, uint16_t id, uint16_t cmd, uint32_t err)
{
    if (err == 0 || err > 4095) {
        return -EINVAL;
    }
    if (cap < VDX_VU_HDR_SIZE) {
        return -EMSGSIZE;
    }
    put_rep_hdr(buf, id, cmd, VDX_VU_HDR_SIZE, VDX_VU_F_ERROR, err);
    return (int)VDX_VU_HDR_SIZE;
}

int vdx_vu_enc_version_rep(void *buf, size_t cap, uint16_t id, uint16_t major,
                           uint16_t minor, const struct vdx_vu_caps *caps)
{
    char extra[64] = "";
    char json[256];
    size_t jlen, total;
    uint8_t *p = buf;
    int n;

    if (caps->max_dma_maps != VDX_VU_DEF_MAX_DMA_MAPS) {
        snprintf(extra, sizeof(extra), ",\"max_dma_maps\":%" PRIu32, caps->max_dma_maps);
    }
    if (caps->pgsizes != VDX_VU_DEF_PGSIZES) {
        n = (int)strlen(extra);
        snprintf(extra + n, sizeof(extra) - (size_t)n, ",\"pgsizes\":%" PRIu64,
                 caps->pgsizes);
    }
    n = snprintf(json, sizeof(json),
                 "{\"capabilities\":{\"max_msg_fds\":%" PRIu32
                 ",\"max_data_xfer_size\":%" PRIu32 "%s}}",
                 caps->max_msg_fds, caps->max_data_xfer_size, extra);
    if (n < 0 || (size_t)n >= sizeof(json)) {
        return -EINVAL;
    }
    jlen = (size_t)n + 1;
    total = VDX_VU_HDR_SIZE + VDX_VU_VERSION_SIZE + jlen;
    if (cap < total) {
        return -EMSGSIZE;
    }
    put_rep_hdr(p, id, VDX_VU_CMD_VERSION, (uint32_t)total, 0, 0);
    put_le16(p + VDX_VU_HDR_SIZE + OFF(vdx_vu_version, major), major);
    put_le16(p + VDX_VU_HDR_SIZE + OFF(vdx_vu_version, minor), minor);
    memcpy(p + VDX_VU_HDR_SIZE + VDX_VU_VERSION_SIZE, json, jlen);
    return (int)total;
}

int vdx_vu_enc_dma_unmap_rep(void *buf, size_t cap, uint16_t id,
                             const struct vdx_vu_dma_unmap *u)
{
    const uint32_t total = VDX_VU_HDR_SIZE + VDX_VU_DMA_UNMAP_SIZE;
    uint8_t *p = buf;

    if (cap < total) {
        return -EMSGSIZE;
    }
    put_rep_hdr(p, id, VDX_VU_CMD_DMA_UNMAP, total, 0, 0);
    p += VDX_VU_HDR_SIZE;
    put_le32(p + OFF(vdx_vu_dma_unmap, argsz), u->argsz);
    put_le32(p + OFF(vdx_vu_dma_unmap, flags), u->flags);
    put_le64(p + OFF(vdx_vu_dma_unmap, iova), u->iova);
    put_le64(p + OFF(vdx_vu_dma_unmap, size), u->size);
    return (int)total;
}

int vdx_vu_enc_device_info_rep(void *buf, size_t cap, uint16_t id, uint32_t flags,
                               uint32_t num_regions, uint32_t num_irqs)
{
    const uint32_t total = VDX_VU_HDR_SIZE + VDX_VU_DEVICE_INFO_SIZE;
    uint8_t *p = buf;

    if (cap < total) {
        return -EMSGSIZE;
    }
    put_rep_hdr(p, id, VDX_VU_CMD_DEVICE_GET_INFO, total, 0, 0);
    p += VDX_VU_HDR_SIZE;
    put_le32(p + OFF(vdx_vu_device_info, argsz), VDX_VU_DEVICE_INFO_SIZE);
    put_le32(p + OFF(vdx_vu_device_info, flags), flags);
    put_le32(p + OFF(vdx_vu_device_info, num_regions), num_regions);
    put_le32(p + OFF(vdx_vu_device_info, num_irqs), num_irqs);
    return (int)total;
}

/* The sparse-mmap capability at p (VDX_VU_REGION_INFO_SIZE into the payload). */
static void put_sparse_cap(uint8_t *p, const struct vdx_vu_region_desc *d)
{
    put_le16(p + OFF(vdx_vu_cap_hdr, id), VDX_VU_REGION_CAP_SPARSE_MMAP);
    put_le16(p + OFF(vdx_vu_cap_hdr, version), VDX_VU_SPARSE_MMAP_VERSION);
    put_le32(p + OFF(vdx_vu_cap_hdr, next), 0);
    put_le32(p + OFF(vdx_vu_sparse_mmap_cap, nr_areas), d->nr_areas);
    put_le32(p + OFF(vdx_vu_sparse_mmap_cap, reserved), 0);
    p += VDX_VU_SPARSE_CAP_SIZE;
    for (uint32_t i = 0; i < d->nr_areas; i++, p += VDX_VU_SPARSE_AREA_SIZE) {
        put_le64(p + OFF(vdx_vu_sparse_area, offset), d->areas[i].offset);
        put_le64(p + OFF(vdx_vu_sparse_area, size), d->areas[i].size);
    }
}

int vdx_vu_enc_region_info_rep(void *buf, size_t cap, uint16_t id, uint32_t argsz_in,
                               const struct vdx_vu_region_desc *d, bool *full)
{
    uint32_t flags = d->flags;
    uint32_t caps, needed, payload;
    uint8_t *p = buf;

    if (argsz_in < VDX_VU_REGION_INFO_SIZE || d->nr_areas > VDX_VU_MAX_SPARSE_AREAS) {
        return -EINVAL;
    }
    caps = d->nr_areas > 0 ? VDX_VU_SPARSE_CAP_SIZE + VDX_VU_SPARSE_AREA_SIZE * d->nr_areas
                           : 0;
    needed = VDX_VU_REGION_INFO_SIZE + caps;
    payload = argsz_in < needed ? VDX_VU_REGION_INFO_SIZE : needed;
    if (cap < VDX_VU_HDR_SIZE + payload) {
        return -EMSGSIZE;
    }
    *full = payload == needed;
    if (caps > 0 && *full) {
        flags |= VDX_VU_REGION_F_CAPS;
        put_sparse_cap(p + VDX_VU_HDR_SIZE + VDX_VU_REGION_INFO_SIZE, d);
    }
    put_rep_hdr(p, id, VDX_VU_CMD_DEVICE_GET_REGION_INFO, VDX_VU_HDR_SIZE + payload, 0, 0);
    p += VDX_VU_HDR_SIZE;
    put_le32(p + OFF(vdx_vu_region_info, argsz), needed);
    put_le32(p + OFF(vdx_vu_region_info, flags), flags);
    put_le32(p + OFF(vdx_vu_region_info, index), d->index);
    put_le32(p + OFF(vdx_vu_region_info, cap_offset),
             (flags & VDX_VU_REGION_F_CAPS) ? VDX_VU_REGION_INFO_SIZE : 0);
    put_le64(p + OFF(vdx_vu_region_info, size), d->size);
    put_le64(p + OFF(vdx_vu_region_info, offset), d->offset);
    return (int)(VDX_VU_HDR_SIZE + payload);
}

int vdx_vu_enc_irq_info_rep(void *buf, size_t cap, uint16_t id, uint32_t index,
                            uint32_t flags, uint32_t count)
{
    const uint32_t total = VDX_VU_HDR_SIZE + VDX_VU_IRQ_INFO_SIZE;
    uint8_t *p = buf;

    if (cap < total) {
        return -EMSGSIZE;
    }
    put_rep_hdr(p, id, VDX_VU_CMD_DEVICE_GET_IRQ_INFO, total, 0, 0);
    p += VDX_VU_HDR_SIZE;
    put_le32(p + OFF(vdx_vu_irq_info, argsz), VDX_VU_IRQ_INFO_SIZE);
    put_le32(p + OFF(vdx_vu_irq_info, flags), flags);
    put_le32(p + OFF(vdx_vu_irq_info, index), index);
    put_le32(p + OFF(vdx_vu_irq_info, count), count);
    return (int)total;
}

static void put_region_rw(uint8_t *p, uint64_t offset, uint32_t region, uint32_t count)
{
    put_le64(p + OFF(vdx_vu_region_rw, offset), offset);
    put_le32(p + OFF(vdx_vu_region_rw, region), region);
    put_le32(p + OFF(vdx_vu_region_rw, count), count);
}

int vdx_vu_enc_region_read_rep(void *buf, size_t cap, uint16_t id, uint64_t offset,
                               uint32_t region, uint32_t count)
{
    uint8_t *p = buf;

    if (count > UINT32_MAX - VDX_VU_REGION_RW_DATA_OFF) {
        return -EINVAL;
    }
    if (cap < (size_t)VDX_VU_REGION_RW_DATA_OFF + count) {
        return -EMSGSIZE;
    }
    put_rep_hdr(p, id, VDX_VU_CMD_REGION_READ, VDX_VU_REGION_RW_DATA_OFF + count, 0, 0);
    put_region_rw(p + VDX_VU_HDR_SIZE, offset, region, count);
    return (int)(VDX_VU_REGION_RW_DATA_OFF + count);
}

int vdx_vu_enc_region_write_rep(void *buf, size_t cap, uint16_t id, uint64_t offset,
                                uint32_t region, uint32_t count)
{
    uint8_t *p = buf;

    if (cap < VDX_VU_REGION_RW_DATA_OFF) {
        return -EMSGSIZE;
    }
    put_rep_hdr(p, id, VDX_VU_CMD_REGION_WRITE, VDX_VU_REGION_RW_DATA_OFF, 0, 0);
    put_region_rw(p + VDX_VU_HDR_SIZE, offset, region, count);
    return (int)VDX_VU_REGION_RW_DATA_OFF;
}

const char *vdx_vu_cmd_name(uint16_t cmd)
{
    static const char *const names[] = {
        [VDX_VU_CMD_VERSION] = "VERSION",
        [VDX_VU_CMD_DMA_MAP] = "DMA_MAP",
        [VDX_VU_CMD_DMA_UNMAP] = "DMA_UNMAP",
        [VDX_VU_CMD_DEVICE_GET_INFO] = "DEVICE_GET_INFO",
        [VDX_VU_CMD_DEVICE_GET_REGION_INFO] = "DEVICE_GET_REGION_INFO",
        [VDX_VU_CMD_DEVICE_GET_REGION_IO_FDS] = "DEVICE_GET_REGION_IO_FDS",
        [VDX_VU_CMD_DEVICE_GET_IRQ_INFO] = "DEVICE_GET_IRQ_INFO",
        [VDX_VU_CMD_DEVICE_SET_IRQS] = "DEVICE_SET_IRQS",
        [VDX_VU_CMD_REGION_READ] = "REGION_READ",
        [VDX_VU_CMD_REGION_WRITE] = "REGION_WRITE",
        [VDX_VU_CMD_DMA_READ] = "DMA_READ",
        [VDX_VU_CMD_DMA_WRITE] = "DMA_WRITE",
        [VDX_VU_CMD_DEVICE_RESET] = "DEVICE_RESET",
        [VDX_VU_CMD_DIRTY_PAGES] = "DIRTY_PAGES",
        [VDX_VU_CMD_REGION_WRITE_MULTI] = "REGION_WRITE_MULTI",
        [VDX_VU_CMD_DEVICE_FEATURE] = "DEVICE_FEATURE",
        [VDX_VU_CMD_MIG_DATA_READ] = "MIG_DATA_READ",
        [VDX_VU_CMD_MIG_DATA_WRITE] = "MIG_DATA_WRITE",
    };

    if (cmd < sizeof(names) / sizeof(names[0]) && names[cmd] != NULL) {
        return names[cmd];
    }
    return "unknown";
}
