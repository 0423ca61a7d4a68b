/* A stand-in for libFuzzer's driver: feeds each file named on the command line (or each
 * file in a named directory) to the target once. Built with the normal compiler, it runs
 * the committed corpora in `make test`, so the targets cannot rot. */
#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    uint8_t buf[65536];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    (void)LLVMFuzzerTestOneInput(buf, n);
    return 0;
}

int main(int argc, char **argv)
{
    int files = 0, errors = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            errors++;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            errors += run_file(argv[i]) != 0;
            files++;
            continue;
        }
        DIR *d = opendir(argv[i]);
        struct dirent *de;
        while (d != NULL && (de = readdir(d)) != NULL) {
            if (de->d_name[0] == '.')
                continue;
            char path[4096];
            (void)snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);
            errors += run_file(path) != 0;
            files++;
        }
        if (d != NULL)
            closedir(d);
    }
    (void)printf("%d passed, %d failed\n", files - errors, errors);
    return errors == 0 && files > 0 ? 0 : 1;
}
