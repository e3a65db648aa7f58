/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A client's DMA region table: key -> region, open addressing with linear
 * probing and backward-shift deletion. It grows with live regions (the seed
 * reserves 65,536 x 128 records up front). Not thread-safe: the device lock
 * guards it.
 */
#ifndef VFIO_DEXT_REGIONS_H
#define VFIO_DEXT_REGIONS_H

#include <stddef.h>
#include <stdint.h>

struct dext_region {
    uint64_t key;
    uint64_t size;
    uint8_t *host;     /* where the device's accesses land */
    void *map_base;    /* our own mapping of a peer's fd, or NULL */
    size_t map_len;
    unsigned nchunks;
    uint64_t bus[];    /* chunk i: [i * DEXT_DMA_CHUNK_SIZE, ...) of the region */
};

struct region_table {
    struct dext_region **slots;
    size_t cap;   /* power of two, or 0 */
    size_t count;
    uint64_t seed; /* random per table: a client cannot choose colliding keys */
};

struct dext_region *regions_find(const struct region_table *t, uint64_t key);
/* Insert (key must be absent). Returns 0 or -ENOMEM. */
int regions_insert(struct region_table *t, struct dext_region *r);
/* Remove and return the region with this key, or NULL. */
struct dext_region *regions_remove(struct region_table *t, uint64_t key);
/* Teardown: call fn on every region, then empty and free the table. */
void regions_clear(struct region_table *t, void (*fn)(struct dext_region *r, void *ctx),
                   void *ctx);

#endif /* VFIO_DEXT_REGIONS_H */
