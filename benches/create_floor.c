/* benches/create_floor.c -- the kernel's floor for a warm fm sync: create the
 * same folders and files fm installs (same sizes), each file opened with
 * O_CREAT|O_EXCL relative to its folder's handle, written, fstat'ed and
 * closed, in THREADS threads, one package at a time; no archive read, no
 * inflate, no hash, no state file. One pass per run: time it with hyperfine
 * and the same `rm -rf` prepare as the warm sync, so that the filesystem
 * pays the same price for inodes freed just before.
 *
 *   (cd PROJECT/.fm/packages && find . -mindepth 1 \( -type d -printf 'd 0 %P\n' \) -o \
 *       \( -type f -printf 'f %s %P\n' \)) > /tmp/tree.txt
 *
 * (find's own order: a folder before what it holds, a package's lines
 * together; sorting would break both.)
 *
 *   cc -O2 -pthread benches/create_floor.c -o /tmp/create_floor
 *   hyperfine -N --prepare 'rm -rf /tmp/floor' '/tmp/create_floor /tmp/tree.txt /tmp/floor 2'
 *
 * Results: BENCHMARKS.md ("warm sync floor"). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct { char kind; long size; char *path; } entry;
static entry *es; static int n; static int *pkg_start; static int npkg;
static const char *target; static int threads;
static char buf[1 << 20];

static void *work(void *arg) {
  long t = (long)arg;
  int root = open(target, O_RDONLY | O_DIRECTORY);
  if (root < 0) { perror(target); exit(1); }
  for (int p = t; p < npkg; p += threads) {
    int dirfd = -1; char cur[4096] = "";
    for (int i = pkg_start[p]; i < pkg_start[p + 1]; i++) {
      entry *e = &es[i];
      if (e->kind == 'd') {
        if (mkdirat(root, e->path, 0755)) { perror(e->path); exit(1); }
        continue;
      }
      char *slash = strrchr(e->path, '/');
      size_t len = slash - e->path;
      if (strncmp(cur, e->path, len) || cur[len]) {
        if (dirfd >= 0) close(dirfd);
        memcpy(cur, e->path, len); cur[len] = 0;
        dirfd = openat(root, cur, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
        if (dirfd < 0) { perror(cur); exit(1); }
      }
      int fd = openat(dirfd, slash + 1, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
      if (fd < 0) { perror(e->path); exit(1); }
      for (long left = e->size; left > 0;) {
        long k = left < (long)sizeof buf ? left : (long)sizeof buf;
        if (write(fd, buf, k) != k) { perror("write"); exit(1); }
        left -= k;
      }
      struct stat st; fstat(fd, &st);
      close(fd);
    }
    if (dirfd >= 0) close(dirfd);
  }
  close(root);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 4) { fprintf(stderr, "usage: create_floor TREE TARGET THREADS\n"); return 2; }
  target = argv[2]; threads = atoi(argv[3]);
  FILE *f = fopen(argv[1], "r");
  if (!f) { perror(argv[1]); return 1; }
  es = malloc(sizeof(entry) * 200000); pkg_start = malloc(sizeof(int) * 200001);
  char line[4096], kind; long size; char path[4000], last[4000] = "";
  while (fgets(line, sizeof line, f) && n < 200000) {
    if (sscanf(line, "%c %ld %3999[^\n]", &kind, &size, path) != 3) continue;
    char *slash = strchr(path, '/');
    size_t top = slash ? (size_t)(slash - path) : strlen(path);
    if (strncmp(last, path, top) || last[top]) { memcpy(last, path, top); last[top] = 0; pkg_start[npkg++] = n; }
    es[n].kind = kind; es[n].size = size; es[n].path = strdup(path); n++;
  }
  pkg_start[npkg] = n;
  if (mkdir(target, 0755)) { perror(target); return 1; }
  pthread_t ts[64];
  for (long t = 0; t < threads && t < 64; t++) pthread_create(&ts[t], 0, work, (void *)t);
  for (long t = 0; t < threads && t < 64; t++) pthread_join(ts[t], 0);
  return 0;
}
