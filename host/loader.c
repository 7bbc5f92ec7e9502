/*
 * loader.c: finds plugin files with libltdl, checks each descriptor before
 * trusting it, and registers its tools. Everything runs on the main thread
 * before any call starts (see host.h). A rejected plugin is reported with
 * one line naming the file and the reason, and fully undone: its tools are
 * unregistered, its schemas freed and its handle closed.
 */
#include <config.h>

#include <dlfcn.h>
#include <ltdl.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <berth/schema.h>
#include <berth/util.h>

#include "host_impl.h"

#ifndef BERTH_PLUGIN_DIR
#define BERTH_PLUGIN_DIR "/usr/local/lib/berth/plugins"
#endif

#define TOOL_NAME_MAX 128

static const char *current_plugin;

const char *berth_loader_current_plugin(void)
{
    return current_plugin;
}

int berth_loader_init(berth_host *h, berth_error *err)
{
    if (lt_dlinit() != 0)
        return berth_error_set(err, BERTH_E_INTERNAL, "libltdl: %s", lt_dlerror());
    h->ltdl_ready = true;
    const char *keep = getenv("BERTH_KEEP_PLUGINS");
    h->keep_plugins = keep && strcmp(keep, "1") == 0;
    return 0;
}

static void reject(const char *origin, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void reject(const char *origin, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    berth_host_logf(BERTH_LOG_ERROR, "plugin %s rejected: %s", origin, msg);
}

static bool valid_tool_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > TOOL_NAME_MAX)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.'))
            return false;
    return true;
}

/* Parse and check one schema text; NULL after reporting why. */
static json_t *load_schema(const char *origin, const char *tool, const char *which,
                           const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (!j) {
        reject(origin, "tool '%s': %s is not valid JSON (line %d: %s)", tool, which, jerr.line,
               jerr.text);
        return NULL;
    }
    json_t *type = json_object_get(j, "type");
    if (!json_is_object(j) || !json_is_string(type) || strcmp(json_string_value(type), "object")) {
        reject(origin, "tool '%s': %s must be a JSON Schema with \"type\": \"object\"", tool,
               which);
        json_decref(j);
        return NULL;
    }
    berth_error err = {0};
    if (berth_schema_check(j, &err) != 0) {
        reject(origin, "tool '%s': %s is not a valid schema: %s", tool, which, err.message);
        json_decref(j);
        return NULL;
    }
    return j;
}

/* Drop the tools registered from index `first` on (a rejected plugin's). */
static void unregister_from(berth_host *h, size_t first)
{
    for (size_t i = first; i < h->n_tools; i++) {
        json_decref(h->tools[i].pub.input_schema);
        json_decref(h->tools[i].pub.output_schema);
    }
    h->n_tools = first;
}

static bool abi_ok(const char *origin, const char *what, uint32_t version, uint32_t size,
                   size_t min_size)
{
    if (BERTH_ABI_MAJOR_OF(version) != BERTH_ABI_MAJOR) {
        reject(origin, "%s has ABI %u.%u; this berth speaks ABI %u.%u (rebuild the plugin)",
               what, BERTH_ABI_MAJOR_OF(version), BERTH_ABI_MINOR_OF(version), BERTH_ABI_MAJOR,
               BERTH_ABI_MINOR);
        return false;
    }
    if (BERTH_ABI_MINOR_OF(version) > BERTH_ABI_MINOR) {
        reject(origin, "%s needs ABI %u.%u, newer than this berth's %u.%u (upgrade berth)", what,
               BERTH_ABI_MAJOR_OF(version), BERTH_ABI_MINOR_OF(version), BERTH_ABI_MAJOR,
               BERTH_ABI_MINOR);
        return false;
    }
    if (size < min_size) {
        reject(origin, "%s struct_size %u is smaller than the %zu bytes ABI %u requires", what,
               size, min_size, BERTH_ABI_MAJOR);
        return false;
    }
    return true;
}

/* The smallest descriptors ABI 1.0 allows: every field up to the last one 1.0 defines. */
#define MIN_PLUGIN_SIZE (offsetof(berth_plugin, n_tools) + sizeof(size_t))
#define MIN_TOOL_SIZE (offsetof(berth_tool, handler) + sizeof(berth_tool_handler))

static int host_plugin_index(const berth_host *h, const char *name)
{
    for (size_t i = 0; i < h->n_plugins; i++)
        if (strcmp(h->plugins[i].desc.name, name) == 0)
            return (int)i;
    return -1;
}

/* Check and register; on failure everything this call did is undone and the
 * caller closes the handle. */
static int register_plugin(berth_host *h, const berth_plugin *p, const char *origin, void *handle)
{
    if (!p) {
        reject(origin, "its berth_plugin_entry() returned NULL");
        return -BERTH_E_INVALID;
    }
    if (!abi_ok(origin, "the plugin descriptor", p->abi_version, p->struct_size, MIN_PLUGIN_SIZE))
        return -BERTH_E_INVALID;
    berth_plugin desc;
    memset(&desc, 0, sizeof desc);
    memcpy(&desc, p, p->struct_size < sizeof desc ? p->struct_size : sizeof desc);

    const char *missing = !desc.name || !*desc.name ? "name"
                          : !desc.version           ? "version"
                          : !desc.tools             ? "tools"
                          : desc.n_tools == 0       ? "n_tools"
                                                    : NULL;
    if (missing) {
        reject(origin, "the descriptor's required field '%s' is missing", missing);
        return -BERTH_E_INVALID;
    }
    int dup = host_plugin_index(h, desc.name);
    if (dup >= 0) {
        /* An earlier directory in the search path wins, as PATH does. */
        berth_host_logf(BERTH_LOG_DEBUG, "plugin %s (%s) is shadowed by %s", desc.name, origin,
                        h->plugins[dup].origin);
        return -BERTH_E_CONFLICT;
    }

    size_t first = h->n_tools;
    /* Tools are an array of the plugin's berth_tool: its stride is the
     * plugin's struct size, which may differ from ours. */
    const unsigned char *base = (const unsigned char *)desc.tools;
    uint32_t stride = desc.tools[0].struct_size;
    host_tool *grown = realloc(h->tools, (h->n_tools + desc.n_tools) * sizeof *grown);
    if (!grown) {
        reject(origin, "out of memory");
        return -BERTH_E_NOMEM;
    }
    h->tools = grown;
    for (size_t i = 0; i < desc.n_tools; i++) {
        const berth_tool *src = (const berth_tool *)(base + (size_t)stride * i);
        char what[64];
        snprintf(what, sizeof what, "tool #%zu", i);
        if (!abi_ok(origin, what, src->abi_version, src->struct_size, MIN_TOOL_SIZE) ||
            src->struct_size != stride) {
            if (src->struct_size != stride)
                reject(origin, "tool #%zu has struct_size %u, unlike tool #0's %u", i,
                       src->struct_size, stride);
            goto undo;
        }
        host_tool *t = &h->tools[h->n_tools];
        memset(t, 0, sizeof *t);
        memcpy(&t->tool, src, stride < sizeof t->tool ? stride : sizeof t->tool);
        const char *tm = !t->tool.name             ? "name"
                         : !t->tool.description    ? "description"
                         : !t->tool.input_schema   ? "input_schema"
                         : !t->tool.handler        ? "handler"
                                                   : NULL;
        if (tm) {
            reject(origin, "tool #%zu (%s): the required field '%s' is missing", i,
                   t->tool.name ? t->tool.name : "unnamed", tm);
            goto undo;
        }
        if (!valid_tool_name(t->tool.name)) {
            reject(origin, "tool name '%s' must be 1-%d characters of A-Z a-z 0-9 _ - .",
                   t->tool.name, TOOL_NAME_MAX);
            goto undo;
        }
        const berth_registered_tool *clash = berth_host_tool_find(h, t->tool.name);
        if (clash) {
            reject(origin, "tool '%s' is already registered by plugin %s", t->tool.name,
                   clash->plugin_name);
            goto undo;
        }
        t->pub.tool = &t->tool;
        t->pub.plugin_name = desc.name;
        if (!(t->pub.input_schema = load_schema(origin, t->tool.name, "input_schema",
                                                t->tool.input_schema)))
            goto undo;
        if (t->tool.output_schema &&
            !(t->pub.output_schema = load_schema(origin, t->tool.name, "output_schema",
                                                 t->tool.output_schema))) {
            json_decref(t->pub.input_schema);
            goto undo;
        }
        h->n_tools++;
    }

    void *state = NULL;
    if (desc.init) {
        current_plugin = desc.name;
        int rc = desc.init(&berth_host_services_table, &state);
        current_plugin = NULL;
        if (rc != 0) {
            reject(origin, "its init failed (%s)", berth_errc_name(rc));
            goto undo;
        }
    }
    host_plugin *pl = realloc(h->plugins, (h->n_plugins + 1) * sizeof *pl);
    if (pl)
        h->plugins = pl;
    char *origin_copy = pl ? strdup(origin) : NULL;
    if (!origin_copy) {
        if (desc.fini)
            desc.fini(state);
        reject(origin, "out of memory");
        goto undo;
    }
    pl[h->n_plugins] = (host_plugin){.handle = handle, .desc = desc, .state = state,
                                     .origin = origin_copy};
    /* The tools point at the plugin's state and its name, which we now own a copy of. */
    for (size_t i = first; i < h->n_tools; i++) {
        h->tools[i].pub.plugin_state = state;
        h->tools[i].pub.plugin_name = pl[h->n_plugins].desc.name;
    }
    h->n_plugins++;
    /* realloc may have moved tools: re-point each registered tool at its own copy. */
    for (size_t i = 0; i < h->n_tools; i++)
        h->tools[i].pub.tool = &h->tools[i].tool;
    berth_host_logf(BERTH_LOG_DEBUG, "plugin %s %s loaded from %s (%zu tools)", desc.name,
                    desc.version, origin, desc.n_tools);
    return 0;
undo:
    unregister_from(h, first);
    for (size_t i = 0; i < h->n_tools; i++)
        h->tools[i].pub.tool = &h->tools[i].tool;
    return -BERTH_E_INVALID;
}

int berth_host_register(berth_host *h, const berth_plugin *p, const char *origin)
{
    return register_plugin(h, p, origin ? origin : "built-in", NULL);
}

int berth_host_load_file(berth_host *h, const char *path)
{
    lt_dladvise advise;
    int rc = -BERTH_E_INVALID;
    if (lt_dladvise_init(&advise) || lt_dladvise_ext(&advise) || lt_dladvise_local(&advise)) {
        reject(path, "libltdl: %s", lt_dlerror());
        return -BERTH_E_INTERNAL;
    }
    lt_dlhandle handle = lt_dlopenadvise(path, advise);
    lt_dladvise_destroy(&advise);
    if (!handle) {
        /* ltdl tries each of its loaders and keeps only "file not found";
         * for a shared object the system loader says what is really wrong. */
        const char *why = lt_dlerror();
        char detail[512] = "";
        size_t n = strlen(path);
        if (n > 3 && strcmp(path + n - 3, ".so") == 0) {
            void *probe = dlopen(path, RTLD_LAZY | RTLD_LOCAL);
            if (probe)
                dlclose(probe);
            else
                snprintf(detail, sizeof detail, "%s", dlerror());
        }
        reject(path, "cannot load it: %s", *detail ? detail : why);
        return -BERTH_E_INVALID;
    }
    /* ltdl counts references: a module already loaded comes back as the same handle. */
    for (size_t i = 0; i < h->n_plugins; i++) {
        if (h->plugins[i].handle == handle) {
            lt_dlclose(handle);
            return -BERTH_E_CONFLICT;
        }
    }
    const lt_dlinfo *info = lt_dlgetinfo(handle);
    const char *origin = info && info->filename ? info->filename : path;
    lt_dlerror(); /* clear, so the error below is lt_dlsym's own */
    berth_plugin_entry_fn entry = (berth_plugin_entry_fn)lt_dlsym(handle, BERTH_PLUGIN_ENTRY_SYMBOL);
    if (!entry) {
        const char *e = lt_dlerror();
        reject(origin, "not a berth plugin: it has no %s symbol (%s)", BERTH_PLUGIN_ENTRY_SYMBOL,
               e ? e : "not found");
        goto out;
    }
    rc = register_plugin(h, entry(), origin, handle);
out:
    if (rc != 0)
        lt_dlclose(handle);
    return rc;
}

typedef struct scan_state {
    berth_host *h;
    int loaded;
    char last[4096];
} scan_state;

static bool file_exists(const char *base, const char *ext)
{
    char path[4200];
    struct stat st;
    snprintf(path, sizeof path, "%s%s", base, ext);
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The file name without directory and extension: "run" for /x/run.so. */
static size_t stem(const char *path, const char **start)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strchr(base, '.');
    *start = base;
    return dot ? (size_t)(dot - base) : strlen(base);
}

/* Whether a plugin from a file of this name is loaded already (from a
 * directory earlier in the search path, which wins as in PATH): then the
 * file is not even opened, so a shadowed copy costs nothing. */
static bool stem_loaded(const berth_host *h, const char *path)
{
    const char *a, *b;
    size_t n = stem(path, &a);
    for (size_t i = 0; i < h->n_plugins; i++) {
        if (!h->plugins[i].handle)
            continue;
        size_t m = stem(h->plugins[i].origin, &b);
        if (m == n && memcmp(a, b, n) == 0)
            return true;
    }
    return false;
}

/* lt_dlforeachfile passes each file name without its extension. */
static int scan_one(const char *filename, void *data)
{
    scan_state *s = data;
    if (strcmp(filename, s->last) == 0)
        return 0; /* run.la and run.so are one plugin */
    snprintf(s->last, sizeof s->last, "%s", filename);
    if (stem_loaded(s->h, filename)) {
        berth_host_logf(BERTH_LOG_DEBUG, "plugin file %s is shadowed by an earlier directory",
                        filename);
        return 0;
    }
    /* Only libtool archives and shared objects are plugin candidates; a README
     * is not. Open the very file found, so a broken one is reported by what
     * is wrong with it rather than as missing. */
    const char *ext = file_exists(filename, ".la")   ? ".la"
                      : file_exists(filename, ".so") ? ".so"
                                                     : NULL;
    if (!ext)
        return 0;
    char path[4200];
    snprintf(path, sizeof path, "%s%s", filename, ext);
    if (berth_host_load_file(s->h, path) == 0)
        s->loaded++;
    return 0;
}

int berth_host_load_dir(berth_host *h, const char *dir)
{
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return -BERTH_E_NOT_FOUND;
    scan_state s = {.h = h};
    lt_dlforeachfile(dir, scan_one, &s);
    return s.loaded;
}

static void load_path_list(berth_host *h, const char *list)
{
    char *copy = strdup(list);
    if (!copy)
        return;
    for (char *dir = copy, *next; dir; dir = next) {
        next = strchr(dir, ':');
        if (next)
            *next++ = '\0';
        if (*dir && berth_host_load_dir(h, dir) == -BERTH_E_NOT_FOUND)
            berth_host_logf(BERTH_LOG_WARNING, "plugin directory %s does not exist", dir);
    }
    free(copy);
}

int berth_host_load_default(berth_host *h, const char *const *extra_dirs, size_t n_extra)
{
    for (size_t i = 0; i < n_extra; i++)
        if (berth_host_load_dir(h, extra_dirs[i]) == -BERTH_E_NOT_FOUND)
            berth_host_logf(BERTH_LOG_WARNING, "plugin directory %s does not exist",
                            extra_dirs[i]);
    const char *env = getenv("BERTH_PLUGIN_PATH");
    if (env && *env)
        load_path_list(h, env);
    /* BERTH_PLUGIN_DIR replaces the installed directory; empty means none
     * (tests use that, so an installed berth cannot leak into them). */
    const char *installed = getenv("BERTH_PLUGIN_DIR");
    if (!installed)
        installed = BERTH_PLUGIN_DIR;
    if (*installed)
        berth_host_load_dir(h, installed);
    return (int)h->n_plugins;
}

void berth_loader_unload_all(berth_host *h)
{
    /* Reverse order: a plugin loaded later may rely on one loaded earlier. */
    for (size_t i = h->n_plugins; i-- > 0;) {
        host_plugin *p = &h->plugins[i];
        if (p->desc.fini)
            p->desc.fini(p->state);
        if (p->handle && !h->keep_plugins)
            lt_dlclose(p->handle);
        free(p->origin);
    }
    free(h->plugins);
    h->plugins = NULL;
    h->n_plugins = 0;
    if (h->ltdl_ready && !h->keep_plugins)
        lt_dlexit();
    h->ltdl_ready = false;
}
