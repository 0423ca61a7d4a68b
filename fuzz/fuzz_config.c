/* Fuzz target: the daemon's configuration file. Any bytes either parse into entries
 * whose keys can be looked up again, or fail with a message naming the line. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    app_conf_file f;
    char msg[512];
    msg[0] = '\0';
    memset(&f, 0, sizeof(f));
    if (app_conf_parse((const char *)data, size, "fuzz.conf", &f, msg, sizeof(msg)) == 0) {
        for (size_t i = 0; i < f.n; i++) {
            unsigned line = 0;
            const char *v = app_conf_file_get(&f, f.entries[i].key, &line);
            if (v == NULL || line == 0)
                abort();
            bool b;
            (void)app_bool_parse(v, &b);
        }
        app_conf_file_fini(&f);
    } else if (msg[0] == '\0' || strstr(msg, "fuzz.conf") == NULL) {
        abort();
    }
    return 0;
}
