/*
 * topo_hwloc.c - host topology from hwloc (gem_profile_add_topology): the NUMA node and the
 * CPUs close to each GPU, found by the GPU's PCI bus id.
 *
 * A profile may hold GPUs of several hosts (merged from MPI ranks). Only GPUs of this host
 * are touched: those whose host is unset (it becomes this host) or already this host's name.
 */
#include "backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef GEM_HAVE_HWLOC
#include <hwloc.h>

/* "dddd:bb:dd.f" (hex, any case; the domain may have up to 8 digits, as CUDA writes it). */
static int gem__parse_busid(const char *s, unsigned *dom, unsigned *bus, unsigned *dev,
                            unsigned *fn)
{
    char tail;
    return sscanf(s, "%x:%x:%x.%x%c", dom, bus, dev, fn, &tail) == 4 && *bus < 256 &&
           *dev < 32 && *fn < 8;
}

/* What this host's topology says about one GPU. */
typedef struct {
    int mine;       /* the GPU is on this host */
    char *host;     /* this host's name for a GPU that had none */
    char *cpuset;   /* NULL when unknown */
    int32_t numa;
} gem__topo_found;

/* NUMA node and CPU set of GPU g from its PCI device's closest non-I/O ancestor. */
static gem_status_t gem__topo_gpu(hwloc_topology_t topo, const gem__gpu *u, int32_t g,
                                  gem__topo_found *f)
{
    unsigned dom, bus, dev, fn;
    if (!gem__parse_busid(u->pci_bus_id, &dom, &bus, &dev, &fn))
        return gem__fail(GEM_ERR_INVALID_INPUT,
                         "gpu %d: pci_bus_id \"%s\" is not of the form dddd:bb:dd.f", (int)g,
                         u->pci_bus_id);
    hwloc_obj_t pci = hwloc_get_pcidev_by_busid(topo, dom, bus, dev, fn);
    if (!pci)
        return gem__fail(GEM_ERR_NO_DEVICE, "gpu %d: PCI device %s is not in this host's topology",
                         (int)g, u->pci_bus_id);
    hwloc_obj_t anc = hwloc_get_non_io_ancestor_obj(topo, pci);
    if (!anc || !anc->cpuset) return GEM_OK;
    char *list = NULL;
    if (hwloc_bitmap_list_asprintf(&list, anc->cpuset) < 0 || !list)
        return gem__fail(GEM_ERR_NO_MEMORY, "gpu %d: cannot format its CPU set", (int)g);
    f->cpuset = gem__strdup(list);
    free(list);
    if (!f->cpuset) return GEM_ERR_NO_MEMORY;
    /* One NUMA node is "the" node; a device local to several has none of its own. */
    f->numa = anc->nodeset && hwloc_bitmap_weight(anc->nodeset) == 1
                  ? (int32_t)hwloc_bitmap_first(anc->nodeset)
                  : -1;
    return GEM_OK;
}

static gem_status_t gem__topo_load(hwloc_topology_t *topo)
{
    if (hwloc_topology_init(topo) != 0)
        return gem__fail(GEM_ERR_NO_MEMORY, "hwloc_topology_init failed");
#if defined(__linux__) && HWLOC_API_VERSION >= 0x00020100
    /* On Linux, hwloc reads PCI devices from sysfs itself; its libpciaccess component would
     * find the same devices and leak libpciaccess's name table on every load. */
    hwloc_topology_set_components(*topo, HWLOC_TOPOLOGY_COMPONENTS_FLAG_BLACKLIST, "pci");
#endif
    if (hwloc_topology_set_io_types_filter(*topo, HWLOC_TYPE_FILTER_KEEP_ALL) != 0 ||
        hwloc_topology_load(*topo) != 0) {
        hwloc_topology_destroy(*topo);
        return gem__fail(GEM_ERR_DEVICE, "hwloc could not load this host's topology");
    }
    return GEM_OK;
}

gem_status_t gem__hwloc_add_topology(gem_profile_t *p)
{
    hwloc_topology_t topo;
    gem_status_t st = gem__topo_load(&topo);
    if (st) return st;
    char host[256];
    gem__host_name(NULL, host, sizeof host);
    gem__topo_found *f = gem__array((size_t)p->num_gpus, sizeof *f);
    if (!f) st = GEM_ERR_NO_MEMORY;
    /* Look everything up first, so that a failure leaves the profile as it was. */
    for (int32_t g = 0; g < p->num_gpus && !st; g++) {
        const gem__gpu *u = &p->gpus[g];
        f[g].numa = u->numa_node;
        f[g].mine = !u->host || strcmp(u->host, host) == 0; /* else another host's GPU */
        if (f[g].mine && !u->host && !(f[g].host = gem__strdup(host))) st = GEM_ERR_NO_MEMORY;
        if (!st && f[g].mine && u->pci_bus_id && *u->pci_bus_id) st = gem__topo_gpu(topo, u, g, &f[g]);
    }
    hwloc_topology_destroy(topo);
    for (int32_t g = 0; g < p->num_gpus && !st; g++) {
        gem__gpu *u = &p->gpus[g];
        if (!f[g].mine) continue;
        if (f[g].host) {
            u->host = f[g].host;
            f[g].host = NULL;
        }
        if (f[g].cpuset) {
            free(u->cpuset);
            u->cpuset = f[g].cpuset;
            f[g].cpuset = NULL;
            u->numa_node = f[g].numa;
        }
    }
    for (int32_t g = 0; f && g < p->num_gpus; g++) free(f[g].host), free(f[g].cpuset);
    free(f);
    return st;
}

#else /* !GEM_HAVE_HWLOC */

gem_status_t gem__hwloc_add_topology(gem_profile_t *p)
{
    (void)p;
    return gem__fail(GEM_ERR_NOT_SUPPORTED,
                     "libgem was built without hwloc (install libhwloc-dev and rebuild)");
}

#endif
