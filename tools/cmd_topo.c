/*
 * cmd_topo.c - gem topo: this host's topology as hwloc sees it: NUMA nodes, cores, and the
 * NVIDIA GPUs on its PCI buses with the NUMA node and CPUs close to each (what
 * `gem profile --topology` writes into a profile).
 */
#include "cli.h"
#include "commands.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef GEM_HAVE_HWLOC
#include <hwloc.h>
#endif

static const char topo_help[] =
    "Usage: gem topo [--all-pci]\n"
    "\n"
    "Describes this host as hwloc sees it: its NUMA nodes and their CPUs and memory, its\n"
    "cores, and the NVIDIA GPUs (PCI vendor 0x10de) with the NUMA node and CPUs close to each.\n"
    "Works without GPUs or drivers (it reads the PCI buses).\n"
    "\n"
    "Options:\n"
    "  --all-pci    list every PCI device, not only NVIDIA's\n"
    "  -h, --help   show this help\n";

#define TOPO_NVIDIA 0x10de

#ifdef GEM_HAVE_HWLOC
static void topo_print_set(const char *label, hwloc_const_bitmap_t set)
{
    char *s = NULL;
    if (set && hwloc_bitmap_list_asprintf(&s, set) >= 0 && s) {
        printf("%s%s", label, s);
        free(s);
    } else {
        printf("%s?", label);
    }
}

static void topo_print_pci(hwloc_topology_t t, hwloc_obj_t o)
{
    printf("  %04x:%02x:%02x.%x  %04x:%04x", o->attr->pcidev.domain, o->attr->pcidev.bus,
           o->attr->pcidev.dev, o->attr->pcidev.func, o->attr->pcidev.vendor_id,
           o->attr->pcidev.device_id);
    hwloc_obj_t anc = hwloc_get_non_io_ancestor_obj(t, o);
    if (anc && anc->nodeset && hwloc_bitmap_weight(anc->nodeset) == 1)
        printf("  numa %d", hwloc_bitmap_first(anc->nodeset));
    else
        printf("  numa -");
    if (anc) topo_print_set("  cpus ", anc->cpuset);
    if (o->name) printf("  %s", o->name);
    /* OS devices hwloc found behind it (CUDA, NVML, DRM, network) */
    for (hwloc_obj_t c = o->io_first_child; c; c = c->next_sibling)
        if (c->type == HWLOC_OBJ_OS_DEVICE && c->name) printf("  [%s]", c->name);
    printf("\n");
}
#endif

int gem_cmd_topo(int argc, char **argv)
{
    int all_pci = 0;
    const cli_opt opts[] = {{"all-pci", 0, CLI_FLAG, &all_pci, 0, 0, NULL}};
    const cli_spec spec = {topo_help, opts, sizeof opts / sizeof opts[0], 0, 0};
    int rc = cli_parse(&spec, argc, argv, NULL, NULL);
    if (rc != CLI_RUN) return rc;

    char host[256];
    if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    printf("host: %s\n", host);
#ifndef GEM_HAVE_HWLOC
    (void)all_pci;
    return cli_error("this gem was built without hwloc (install libhwloc-dev and rebuild)");
#else
    hwloc_topology_t t;
    if (hwloc_topology_init(&t) != 0) return cli_error("hwloc_topology_init failed");
#if defined(__linux__) && HWLOC_API_VERSION >= 0x00020100
    /* sysfs gives the PCI devices; the libpciaccess component would leak on every load */
    hwloc_topology_set_components(t, HWLOC_TOPOLOGY_COMPONENTS_FLAG_BLACKLIST, "pci");
#endif
    if (hwloc_topology_set_io_types_filter(t, HWLOC_TYPE_FILTER_KEEP_ALL) != 0 ||
        hwloc_topology_load(t) != 0) {
        hwloc_topology_destroy(t);
        return cli_error("hwloc could not load this host's topology");
    }
    int nodes = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE);
    printf("numa nodes: %d\n", nodes);
    for (int i = 0; i < nodes; i++) {
        hwloc_obj_t n = hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE, (unsigned)i);
        printf("  node %u:", n->os_index);
        topo_print_set(" cpus ", n->cpuset);
        printf(", memory %.1f GiB\n", (double)n->attr->numanode.local_memory / 1073741824.0);
    }
    printf("cores: %d (%d hardware threads)\n", hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE),
           hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU));
    int gpus = 0, pci = 0;
    for (hwloc_obj_t o = NULL; (o = hwloc_get_next_pcidev(t, o));) {
        pci++;
        if (o->attr->pcidev.vendor_id != TOPO_NVIDIA) continue;
        if (!gpus++) printf("nvidia pci devices:\n");
        topo_print_pci(t, o);
    }
    if (!gpus) printf("nvidia pci devices: none (%d PCI devices, none of vendor 0x10de)\n", pci);
    if (all_pci) {
        printf("pci devices: %d\n", pci);
        for (hwloc_obj_t o = NULL; (o = hwloc_get_next_pcidev(t, o));) topo_print_pci(t, o);
    }
    hwloc_topology_destroy(t);
    return CLI_EXIT_OK;
#endif
}
