/* SPDX-License-Identifier: BSD-3-Clause */
#include "dext/regions.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

static size_t hash_key(uint64_t key, uint64_t seed, size_t cap)
{
    key ^= seed;
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdull;
    key ^= key >> 33;
    key *= 0xc4ceb9fe1a85ec53ull;
    key ^= key >> 33;
    return (size_t)key & (cap - 1);
}

static size_t find_slot(const struct region_table *t, uint64_t key)
{
    size_t i = hash_key(key, t->seed, t->cap);

    while (t->slots[i] && t->slots[i]->key != key) {
        i = (i + 1) & (t->cap - 1);
    }
    return i;
}

struct dext_region *regions_find(const struct region_table *t, uint64_t key)
{
    return t->cap ? t->slots[find_slot(t, key)] : NULL;
}

static int grow(struct region_table *t)
{
    size_t ncap = t->cap ? t->cap * 2 : 16;
    struct region_table n = {.cap = ncap, .count = t->count, .seed = t->seed};

    n.slots = calloc(ncap, sizeof(*n.slots));
    if (!n.slots) {
        return -ENOMEM;
    }
    if (t->cap == 0) {
        n.seed = (uint64_t)arc4random() << 32 | arc4random();
    }
    for (size_t i = 0; i < t->cap; i++) {
        if (t->slots[i]) {
            n.slots[find_slot(&n, t->slots[i]->key)] = t->slots[i];
        }
    }
    free(t->slots);
    *t = n;
    return 0;
}

int regions_insert(struct region_table *t, struct dext_region *r)
{
    if ((t->count + 1) * 4 > t->cap * 3) {
        int ret = grow(t);

        if (ret < 0) {
            return ret;
        }
    }
    t->slots[find_slot(t, r->key)] = r;
    t->count++;
    return 0;
}

/* Is slot `home` cyclically in (hole, i]? Then the entry at i may not move to hole. */
static bool stays(size_t hole, size_t i, size_t home)
{
    return hole <= i ? (hole < home && home <= i) : (hole < home || home <= i);
}

static void remove_at(struct region_table *t, size_t hole)
{
    size_t i = hole;

    t->slots[hole] = NULL;
    for (;;) {
        i = (i + 1) & (t->cap - 1);
        if (!t->slots[i]) {
            break;
        }
        if (!stays(hole, i, hash_key(t->slots[i]->key, t->seed, t->cap))) {
            t->slots[hole] = t->slots[i];
            t->slots[i] = NULL;
            hole = i;
        }
    }
    t->count--;
}

struct dext_region *regions_remove(struct region_table *t, uint64_t key)
{
    size_t i;
    struct dext_region *r;

    if (!t->cap) {
        return NULL;
    }
    i = find_slot(t, key);
    r = t->slots[i];
    if (r) {
        remove_at(t, i);
    }
    return r;
}

void regions_clear(struct region_table *t, void (*fn)(struct dext_region *r, void *ctx),
                   void *ctx)
{
    for (size_t i = 0; i < t->cap; i++) {
        if (t->slots[i]) {
            fn(t->slots[i], ctx);
        }
    }
    free(t->slots);
    *t = (struct region_table){0};
}
