/*
 * cli.c: the command line. `berth tools`, `berth call`, `berth doctor` and
 * `berth serve` all build one host from the same global options, so the CLI
 * and the MCP front-ends run the same tools with the same policy.
 */
#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <berth/util.h>

#include "cli.h"
#include "host_impl.h"
#include "mcp.h"
#include "mcp_http.h"

enum { EXIT_OK = 0, EXIT_TOOL_FAILED = 1, EXIT_USAGE = 2, EXIT_ENGINE = 3 };

typedef struct cli_opts {
    berth_host_options host;
    const char **plugin_dirs;
    size_t n_plugin_dirs;
    json_t *policy_overrides; /* applied over the policy file */
    berth_log_level log_level;
    bool log_level_set;
    bool no_reap;
} cli_opts;

static void usage(FILE *f)
{
    fputs("usage: berth [options] <command> [args]\n"
          "\n"
          "commands:\n"
          "  tools [--json]              list the tools the plugins provide\n"
          "  call TOOL [JSON | k=v ...]  run one tool and print its result as JSON\n"
          "                              (k=v: a string, or JSON where the schema wants\n"
          "                              a number, boolean, array or object; k:=JSON forces JSON)\n"
          "  serve [--http ADDR]         serve the tools over MCP (stdio, or Streamable HTTP\n"
          "        [--token-file F]      on ADDR such as 127.0.0.1:8080; a bearer token file,\n"
          "        [--allow-origin O]    and one more Origin or Host to accept besides\n"
          "        [--allow-host H]      the loopback ones)\n"
          "  doctor                      show the backend, engine and API versions, and policy\n"
          "  version                     print berth's version\n"
          "\n"
          "options:\n"
          "  --backend socket|cli|auto   Docker backend (env BERTH_BACKEND; default auto)\n"
          "  --docker-host URL           unix:///path or tcp://host:port (env DOCKER_HOST)\n"
          "  --docker-cli PATH           docker binary for the cli backend (env BERTH_DOCKER_CLI)\n"
          "  --plugin-dir DIR            load plugins from DIR first (repeatable;\n"
          "                              env BERTH_PLUGIN_PATH, ':'-separated)\n"
          "  --policy FILE               policy file (JSON; env BERTH_POLICY)\n"
          "  --max-memory SIZE           largest memory_limit a caller may ask for\n"
          "  --max-cpus N                largest cpu_limit\n"
          "  --max-timeout SECONDS       largest timeout\n"
          "  --max-output BYTES          largest output kept per stream\n"
          "  --max-concurrent N          runs at once; more calls queue\n"
          "  --allow-network NAME        allow a network mode besides none (repeatable)\n"
          "  --allow-image PATTERN       allow only images matching (repeatable)\n"
          "  --allow-volume DIR          allow volumes under this host directory (repeatable)\n"
          "  --see-all-containers        let ps and stop reach containers berth did not create\n"
          "  --allow-local-repos         let github clone file:// URLs and host paths\n"
          "  --log-level LEVEL           debug, info, notice, warning, error (default: notice;\n"
          "                              serve and doctor: info)\n"
          "  --no-reap                   do not remove leftovers of crashed berth processes\n"
          "environment: BERTH_INSTANCE_ID sets the berth.instance label of this process's\n"
          "containers (default: random); BERTH_PLUGIN_DIR replaces the installed plugin\n"
          "directory (empty: none)\n"
          "  -h, --help, --version\n",
          f);
}

/* Append `value` to the array `key` of the policy overrides. */
static void override_push(json_t *ov, const char *key, const char *value)
{
    json_t *arr = json_object_get(ov, key);
    if (!arr) {
        arr = json_array();
        json_object_set_new(ov, key, arr);
    }
    json_array_append_new(arr, json_string(value));
}

static int parse_number(const char *opt, const char *s, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end) {
        fprintf(stderr, "berth: %s '%s' is not a number\n", opt, s);
        return -1;
    }
    *out = v;
    return 0;
}

/* Global options; returns the index of the command, or -1 after printing why. */
static int parse_global(int argc, char **argv, cli_opts *o)
{
    enum {
        O_BACKEND = 256, O_HOST, O_CLI, O_PLUGIN_DIR, O_POLICY, O_MAX_MEMORY, O_MAX_CPUS,
        O_MAX_TIMEOUT, O_MAX_OUTPUT, O_MAX_CONC, O_ALLOW_NET, O_ALLOW_IMAGE, O_ALLOW_VOL,
        O_SEE_ALL, O_LOCAL_REPOS, O_LOG_LEVEL, O_NO_REAP, O_VERSION
    };
    static const struct option longopts[] = {
        {"backend", required_argument, NULL, O_BACKEND},
        {"docker-host", required_argument, NULL, O_HOST},
        {"docker-cli", required_argument, NULL, O_CLI},
        {"plugin-dir", required_argument, NULL, O_PLUGIN_DIR},
        {"policy", required_argument, NULL, O_POLICY},
        {"max-memory", required_argument, NULL, O_MAX_MEMORY},
        {"max-cpus", required_argument, NULL, O_MAX_CPUS},
        {"max-timeout", required_argument, NULL, O_MAX_TIMEOUT},
        {"max-output", required_argument, NULL, O_MAX_OUTPUT},
        {"max-concurrent", required_argument, NULL, O_MAX_CONC},
        {"allow-network", required_argument, NULL, O_ALLOW_NET},
        {"allow-image", required_argument, NULL, O_ALLOW_IMAGE},
        {"allow-volume", required_argument, NULL, O_ALLOW_VOL},
        {"see-all-containers", no_argument, NULL, O_SEE_ALL},
        {"allow-local-repos", no_argument, NULL, O_LOCAL_REPOS},
        {"log-level", required_argument, NULL, O_LOG_LEVEL},
        {"no-reap", no_argument, NULL, O_NO_REAP},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, O_VERSION},
        {NULL, 0, NULL, 0},
    };
    const char *backend = getenv("BERTH_BACKEND");
    /* A fixed instance id lets a supervisor (or a test) find this process's
     * containers by their berth.instance label. */
    o->host.docker.instance_id = getenv("BERTH_INSTANCE_ID");
    o->host.policy_file = getenv("BERTH_POLICY");
    if (o->host.policy_file && !*o->host.policy_file)
        o->host.policy_file = NULL;
    int c;
    double num;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
        switch (c) {
        case O_BACKEND:
            backend = optarg;
            break;
        case O_HOST:
            o->host.docker.host = optarg;
            break;
        case O_CLI:
            o->host.docker.cli_path = optarg;
            break;
        case O_PLUGIN_DIR: {
            const char **dirs = realloc(o->plugin_dirs, (o->n_plugin_dirs + 1) * sizeof *dirs);
            if (!dirs)
                return -1;
            o->plugin_dirs = dirs;
            dirs[o->n_plugin_dirs++] = optarg;
            break;
        }
        case O_POLICY:
            o->host.policy_file = optarg;
            break;
        case O_MAX_MEMORY:
            json_object_set_new(o->policy_overrides, "max_memory", json_string(optarg));
            break;
        case O_MAX_CPUS:
        case O_MAX_TIMEOUT:
        case O_MAX_OUTPUT:
        case O_MAX_CONC:
            if (parse_number(argv[optind - 1], optarg, &num) != 0)
                return -1;
            json_object_set_new(o->policy_overrides,
                                c == O_MAX_CPUS      ? "max_cpus"
                                : c == O_MAX_TIMEOUT ? "max_timeout"
                                : c == O_MAX_OUTPUT  ? "max_output_bytes"
                                                     : "max_concurrent_runs",
                                c == O_MAX_CPUS || c == O_MAX_TIMEOUT ? json_real(num)
                                                                      : json_integer((json_int_t)num));
            break;
        case O_ALLOW_NET:
            if (!json_object_get(o->policy_overrides, "allowed_networks"))
                override_push(o->policy_overrides, "allowed_networks", "none");
            override_push(o->policy_overrides, "allowed_networks", optarg);
            break;
        case O_ALLOW_IMAGE:
            override_push(o->policy_overrides, "allowed_images", optarg);
            break;
        case O_ALLOW_VOL:
            override_push(o->policy_overrides, "allowed_volume_roots", optarg);
            break;
        case O_SEE_ALL:
            json_object_set_new(o->policy_overrides, "see_all_containers", json_true());
            break;
        case O_LOCAL_REPOS:
            json_object_set_new(o->policy_overrides, "allow_local_repos", json_true());
            break;
        case O_LOG_LEVEL:
            if (berth_log_level_parse(optarg, &o->log_level) != 0) {
                fprintf(stderr, "berth: --log-level '%s' is not one of debug, info, notice, "
                                "warning, error\n", optarg);
                return -1;
            }
            o->log_level_set = true;
            break;
        case O_NO_REAP:
            o->no_reap = true;
            break;
        case O_VERSION:
            printf("berth %s (plugin ABI %d.%d)\n", PACKAGE_VERSION, BERTH_ABI_MAJOR,
                   BERTH_ABI_MINOR);
            exit(EXIT_OK);
        case 'h':
            usage(stdout);
            exit(EXIT_OK);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (backend && *backend && berth_backend_parse(backend, &o->host.docker.kind) != 0) {
        fprintf(stderr, "berth: backend '%s' is not socket, cli or auto\n", backend);
        return -1;
    }
    if (optind >= argc) {
        usage(stderr);
        return -1;
    }
    return optind;
}

static berth_host *open_host(cli_opts *o, bool reap)
{
    berth_host *h = NULL;
    berth_error err = {0};
    if (berth_host_new(&o->host, &h, &err) != 0) {
        fprintf(stderr, "berth: %s\n", err.message);
        return NULL;
    }
    if (json_object_size(o->policy_overrides) &&
        berth_policy_apply_json(berth_host_policy(h), o->policy_overrides, &err) != 0) {
        fprintf(stderr, "berth: %s\n", err.message);
        berth_host_free(h);
        return NULL;
    }
    berth_host_load_default(h, o->plugin_dirs, o->n_plugin_dirs);
    if (reap && !o->no_reap) {
        /* Leftovers of a crashed berth; an engine that is down is reported
         * by the command itself, not here. */
        int n = berth_docker_reap(berth_host_docker(h), &err);
        if (n > 0)
            berth_host_logf(BERTH_LOG_NOTICE, "removed %d container(s) left by berth processes "
                                              "that are gone", n);
    }
    return h;
}

/* ----------------------------------------------------------------- tools */

static int cmd_tools(berth_host *h, int argc, char **argv)
{
    bool as_json = argc > 1 && strcmp(argv[1], "--json") == 0;
    if (argc > (as_json ? 2 : 1)) {
        fprintf(stderr, "usage: berth tools [--json]\n");
        return EXIT_USAGE;
    }
    size_t n = berth_host_tool_count(h);
    if (as_json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, berth_host_tool_json(berth_host_tool_at(h, i)));
        json_dumpf(arr, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(arr);
        return EXIT_OK;
    }
    if (n == 0)
        fprintf(stderr, "berth: no tools: no plugin was found (set --plugin-dir or "
                        "BERTH_PLUGIN_PATH)\n");
    for (size_t i = 0; i < n; i++) {
        const berth_registered_tool *t = berth_host_tool_at(h, i);
        const char *d = t->tool->description;
        const char *nl = strchr(d, '\n');
        printf("%-32s %-10s %.*s\n", t->tool->name, t->plugin_name,
               nl ? (int)(nl - d) : (int)strlen(d), d);
    }
    return EXIT_OK;
}

/* ------------------------------------------------------------------ call */

/* Whether the schema of property `key` accepts a string (then k=v stays a string). */
static bool wants_string(const berth_registered_tool *t, const char *key)
{
    json_t *prop = json_object_get(json_object_get(t->input_schema, "properties"), key);
    json_t *type = json_object_get(prop, "type");
    if (!type)
        return true;
    if (json_is_string(type))
        return strcmp(json_string_value(type), "string") == 0;
    size_t i;
    json_t *v;
    json_array_foreach(type, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), "string") == 0)
            return true;
    }
    return false;
}

static json_t *parse_call_args(const berth_registered_tool *t, int argc, char **argv)
{
    json_error_t jerr;
    if (argc == 1 && argv[0][0] == '{') {
        json_t *j = json_loads(argv[0], 0, &jerr);
        if (!j || !json_is_object(j)) {
            fprintf(stderr, "berth: the arguments are not a JSON object: %s (column %d)\n",
                    j ? "not an object" : jerr.text, jerr.column);
            json_decref(j);
            return NULL;
        }
        return j;
    }
    json_t *args = json_object();
    for (int i = 0; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq || eq == argv[i]) {
            fprintf(stderr, "berth: argument '%s' is not key=value, key:=json, or one JSON "
                            "object\n", argv[i]);
            json_decref(args);
            return NULL;
        }
        bool force_json = eq > argv[i] && eq[-1] == ':';
        char *key = strndup(argv[i], (size_t)(eq - argv[i]) - (force_json ? 1 : 0));
        const char *val = eq + 1;
        json_t *v = NULL;
        if (force_json || !wants_string(t, key)) {
            v = json_loads(val, JSON_DECODE_ANY, &jerr);
            if (!v && force_json) {
                fprintf(stderr, "berth: %s: '%s' is not JSON: %s\n", key, val, jerr.text);
                free(key);
                json_decref(args);
                return NULL;
            }
        }
        json_object_set_new(args, key, v ? v : json_string(val));
        free(key);
    }
    return args;
}

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static bool cli_cancelled(void *ud)
{
    (void)ud;
    return interrupted != 0;
}

static void cli_progress(void *ud, double progress, double total, const char *message)
{
    (void)ud;
    (void)progress;
    (void)total;
    /* Output chunks carry their own newlines; status lines (pull, build) do not. */
    if (message && *message) {
        size_t n = strlen(message);
        fputs(message, stderr);
        if (message[n - 1] != '\n')
            fputc('\n', stderr);
    }
}

static int cmd_call(berth_host *h, int argc, char **argv)
{
    bool show_progress = false;
    int first = 1;
    while (first < argc && strcmp(argv[first], "--progress") == 0) {
        show_progress = true;
        first++;
    }
    if (first >= argc) {
        fprintf(stderr, "usage: berth call [--progress] TOOL ['<json object>' | key=value ...]\n");
        return EXIT_USAGE;
    }
    const char *name = argv[first];
    const berth_registered_tool *t = berth_host_tool_find(h, name);
    if (!t) {
        fprintf(stderr, "berth: unknown tool '%s'; `berth tools` lists the tools\n", name);
        return EXIT_USAGE;
    }
    json_t *args = parse_call_args(t, argc - first - 1, argv + first + 1);
    if (!args)
        return EXIT_USAGE;

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    berth_call_observer obs = {.cancelled = cli_cancelled,
                               .progress = show_progress ? cli_progress : NULL};
    json_t *result = NULL;
    berth_error err = {0};
    int rc = berth_host_call(h, name, args, &obs, &result, &err);
    json_decref(args);
    if (rc != 0) {
        fprintf(stderr, "berth: %s\n", err.message);
        return rc == -BERTH_E_CANCELLED ? EXIT_TOOL_FAILED : EXIT_USAGE;
    }
    json_t *structured = json_object_get(result, "structuredContent");
    bool is_error = json_is_true(json_object_get(result, "isError"));
    if (structured) {
        json_dumpf(structured, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
    } else {
        /* No structured result: print the text blocks, the error's words. */
        size_t i;
        json_t *block;
        json_array_foreach(json_object_get(result, "content"), i, block)
        {
            const char *text = json_string_value(json_object_get(block, "text"));
            if (text)
                fprintf(is_error ? stderr : stdout, "%s%s\n", is_error ? "berth: " : "", text);
        }
    }
    fflush(stdout);
    json_decref(result);
    return is_error ? EXIT_TOOL_FAILED : EXIT_OK;
}

/* ---------------------------------------------------------------- doctor */

static int cmd_doctor(berth_host *h)
{
    berth_docker *d = berth_host_docker(h);
    berth_docker_version_info v = {0};
    berth_error err = {0};
    int status = EXIT_OK;
    printf("backend:    %s\n", berth_backend_name(berth_docker_kind(d)));
    printf("instance:   %s\n", berth_host_instance_id(h));
    if (berth_docker_version(d, &v, &err) == 0) {
        printf("engine:     %s (%s/%s)\n", v.engine_version ? v.engine_version : "?",
               v.os ? v.os : "?", v.arch ? v.arch : "?");
        printf("api:        %s\n", v.api_version ? v.api_version : "?");
        if (v.backend_detail)
            printf("via:        %s\n", v.backend_detail);
    } else {
        printf("engine:     unreachable: %s\n", err.message);
        status = EXIT_ENGINE;
    }
    berth_docker_version_info_free(&v);
    printf("plugin ABI: %d.%d\n", BERTH_ABI_MAJOR, BERTH_ABI_MINOR);
    printf("plugins:   ");
    for (size_t i = 0; i < h->n_plugins; i++)
        printf(" %s(%s)", h->plugins[i].desc.name, h->plugins[i].origin);
    printf("\ntools:      %zu\n", berth_host_tool_count(h));
    json_t *p = berth_policy_to_json(berth_host_policy(h));
    char *ptxt = p ? json_dumps(p, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    printf("policy:     %s\n", ptxt ? ptxt : "?");
    free(ptxt);
    json_decref(p);
    return status;
}

/* ----------------------------------------------------------------- serve */

static int cmd_serve(berth_host *h, int argc, char **argv)
{
    berth_mcp_http_options http = {0};
    bool use_http = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--http") == 0 && i + 1 < argc) {
            use_http = true;
            http.listen = argv[++i];
        } else if (strcmp(argv[i], "--token-file") == 0 && i + 1 < argc) {
            http.token_file = argv[++i];
        } else if (strcmp(argv[i], "--allow-origin") == 0 && i + 1 < argc) {
            http.allowed_origin = argv[++i];
        } else if (strcmp(argv[i], "--allow-host") == 0 && i + 1 < argc) {
            http.allowed_host = argv[++i];
        } else {
            fprintf(stderr, "usage: berth serve [--http ADDR:PORT [--token-file FILE] "
                            "[--allow-origin ORIGIN] [--allow-host HOST]]\n");
            return EXIT_USAGE;
        }
    }
    if ((http.token_file || http.allowed_origin || http.allowed_host) && !use_http) {
        fprintf(stderr, "berth: --token-file, --allow-origin and --allow-host go with --http\n");
        return EXIT_USAGE;
    }
    return use_http ? berth_mcp_serve_http(h, &http) : berth_mcp_serve_stdio(h);
}

int berth_cli_main(int argc, char **argv)
{
    cli_opts o = {.policy_overrides = json_object()};
    int status = EXIT_USAGE;
    berth_host *h = NULL;
    int cmd = parse_global(argc, argv, &o);
    if (cmd < 0)
        goto out;
    const char *name = argv[cmd];
    bool serving = strcmp(name, "serve") == 0 || strcmp(name, "mcp") == 0;
    bool doctor = strcmp(name, "doctor") == 0;
    if (strcmp(name, "version") == 0) {
        printf("berth %s (plugin ABI %d.%d)\n", PACKAGE_VERSION, BERTH_ABI_MAJOR,
               BERTH_ABI_MINOR);
        status = EXIT_OK;
        goto out;
    }
    if (!serving && !doctor && strcmp(name, "tools") && strcmp(name, "call")) {
        fprintf(stderr, "berth: unknown command '%s'\n", name);
        usage(stderr);
        goto out;
    }
    berth_host_set_log_level(o.log_level_set          ? o.log_level
                             : (serving || doctor)    ? BERTH_LOG_INFO
                                                      : BERTH_LOG_NOTICE);
    bool reap = serving || strcmp(name, "call") == 0;
    if (!(h = open_host(&o, reap))) {
        status = EXIT_ENGINE;
        goto out;
    }
    if (serving)
        status = cmd_serve(h, argc - cmd, argv + cmd);
    else if (doctor)
        status = cmd_doctor(h);
    else if (strcmp(name, "tools") == 0)
        status = cmd_tools(h, argc - cmd, argv + cmd);
    else
        status = cmd_call(h, argc - cmd, argv + cmd);
out:
    berth_host_free(h);
    json_decref(o.policy_overrides);
    free(o.plugin_dirs);
    return status;
}
