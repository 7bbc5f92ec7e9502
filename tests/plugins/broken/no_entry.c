/* A shared object that is not a berth plugin: no berth_plugin_entry. */
int berth_plugin_something_else(void);
int berth_plugin_something_else(void)
{
    return 42;
}
