/*
 * Internal to the host executable: the host struct that host.c and loader.c
 * share. Front-ends use host.h only.
 */
#ifndef BERTH_HOST_IMPL_H
#define BERTH_HOST_IMPL_H

#include <pthread.h>
#include <stdatomic.h>

#include "host.h"

/* A registered tool: the public view, plus a full-size copy of the plugin's
 * descriptor (the plugin's own may be an older, smaller struct). */
typedef struct host_tool {
    berth_registered_tool pub;
    berth_tool tool;
} host_tool;

typedef struct host_plugin {
    void *handle;         /* lt_dlhandle, NULL for built-in plugins */
    berth_plugin desc;    /* full-size copy */
    void *state;          /* from init */
    char *origin;         /* the file, or "built-in" */
} host_plugin;

struct berth_host {
    berth_policy policy;
    berth_docker *docker;
    host_tool *tools;
    size_t n_tools;
    host_plugin *plugins;
    size_t n_plugins;
    bool ltdl_ready;
    bool keep_plugins; /* BERTH_KEEP_PLUGINS=1: no dlclose, so leak reports name frames */
    _Atomic bool shutting_down;
    pthread_mutex_t slots_lock;
    pthread_cond_t slots_cond;
    int running;
};

extern const berth_host_services berth_host_services_table;

int berth_loader_init(berth_host *h, berth_error *err);
void berth_loader_unload_all(berth_host *h);
/* The plugin whose init runs now (for log lines from init), or NULL. */
const char *berth_loader_current_plugin(void);

const char *berth_log_level_name(berth_log_level level);
int berth_log_level_parse(const char *s, berth_log_level *out);

#endif /* BERTH_HOST_IMPL_H */
