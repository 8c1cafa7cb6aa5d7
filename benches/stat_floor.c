/* benches/stat_floor.c -- the kernel's floor for a no-op fm sync: the same
 * fstatat calls fm's no-op check makes (one per installed file, relative to
 * the packages folder as "name/sub/file", and one per subfolder), with no fm
 * around them, in THREADS threads; prints the first pass and the best of 30.
 *
 *   (cd PROJECT/.fm/packages && find . -type f | sed 's|^\./||' | sort) > files.txt
 *   cc -O2 -pthread benches/stat_floor.c -o /tmp/stat_floor
 *   /tmp/stat_floor PROJECT/.fm/packages 0 2     # mode 0: fm's scheme
 *   /tmp/stat_floor PROJECT/.fm/packages 1 2     # mode 1: a handle per folder
 *
 * files.txt is read from the current folder. Results: BENCHMARKS.md. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>
#include <pthread.h>
#include <time.h>
static char **paths; static int n; static const char *root; static int mode;
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e3+t.tv_nsec/1e6;}
typedef struct {int lo,hi; long calls;} job;
static void* work(void*a){ job*j=a; int pfd=open(root,O_RDONLY|O_DIRECTORY);
 struct stat st; char last[4096]=""; int dfd=-1;
 for(int i=j->lo;i<j->hi;i++){ char*p=paths[i];
  if(mode==0){ // current: stat each new folder prefix, then full rel path
    char *s=strrchr(p,'/'); if(s){ size_t l=s-p; if(strncmp(last,p,l)||last[l]){ memcpy(last,p,l); last[l]=0; // stat pkg/sub
        char *q=strchr(p,'/'); if(q!=s){ char tmp[4096]; memcpy(tmp,p,l); tmp[l]=0; fstatat(pfd,tmp,&st,AT_SYMLINK_NOFOLLOW); j->calls++; } } }
    fstatat(pfd,p,&st,AT_SYMLINK_NOFOLLOW); j->calls++;
  } else { // folder handle: open dir of file relative to pkgfd, stat last component
    char *s=strrchr(p,'/'); size_t l=s-p;
    if(strncmp(last,p,l)||last[l]){ if(dfd>=0){close(dfd);j->calls++;} memcpy(last,p,l); last[l]=0; dfd=openat(pfd,last,O_PATH|O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC); j->calls++; }
    fstatat(dfd,s+1,&st,AT_SYMLINK_NOFOLLOW); j->calls++;
  }
 } return 0;}
int main(int c,char**v){ root=v[1]; mode=atoi(v[2]); int th=atoi(v[3]); FILE*f=fopen("files.txt","r"); paths=malloc(sizeof(char*)*20000); char b[4096];
 while(fgets(b,sizeof b,f)){b[strcspn(b,"\n")]=0; paths[n++]=strdup(b);} 
 double best=1e9, first=0; long calls=0; for(int r=0;r<30;r++){ double t=now(); pthread_t t_[8]; job js[8]; for(int i=0;i<th;i++){js[i].lo=n*i/th; js[i].hi=n*(i+1)/th; js[i].calls=0; pthread_create(&t_[i],0,work,&js[i]);} calls=0; for(int i=0;i<th;i++){pthread_join(t_[i],0); calls+=js[i].calls;} t=now()-t; if(r==0)first=t; if(t<best)best=t;}
 printf("first %.2f; mode %d threads %d: best %.2f ms, %ld calls\n",first,mode,th,best,calls);}
