/* benches/negative_dentries.c -- fills the kernel's dentry cache with N
 * negative entries (a stat of N names that do not exist), as hours of
 * builds and test runs do, to measure a no-op fm sync and the stat floor
 * (benches/stat_floor.c) on a bloated cache; BENCHMARKS.md, fourth pass.
 *
 *   cc -O2 benches/negative_dentries.c -o /tmp/negative_dentries
 *   mkdir -p /tmp/negd && /tmp/negative_dentries /tmp/negd 8000000
 *   cat /proc/sys/fs/dentry-state          # first field: dentries
 *   echo 2 > /proc/sys/vm/drop_caches      # (root) empties it again */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: %s DIR N\n", argv[0]); return 2; }
    long n = atol(argv[2]);
    char path[4096];
    struct stat st;
    for (long i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/x%ld", argv[1], i);
        stat(path, &st);
    }
    return 0;
}
