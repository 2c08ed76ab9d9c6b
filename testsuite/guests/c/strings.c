/* Struct copies, memcpy/memset/memmove/strlen/strcmp as compiled code
 * uses them, and a sort: what compilers turn into SSE moves and
 * stores. */
#include "rt.h"

struct record {
    char name[24];
    int id;
    double score;
    unsigned char tags[37];
    long long stamp;
};

static struct record table[40];

static void fill(struct record *r, int i)
{
    memset(r, 0, sizeof *r);
    rt_snprintf(r->name, sizeof r->name, "item-%03d-%c", (i * 37) % 101, 'a' + i % 26);
    r->id = i * 7919 % 1000;
    r->score = 1000.0 / (i + 1) - i * 0.125;
    for (int k = 0; k < 37; k++)
        r->tags[k] = (unsigned char)(i * 31 + k * 7);
    r->stamp = (long long)i * 1234567890123LL;
}

static uint32_t checksum(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 16777619u;
    return h;
}

/* Insertion sort by name, copying whole structs. */
static void sort(struct record *t, int n)
{
    for (int i = 1; i < n; i++) {
        struct record key = t[i];
        int j = i - 1;
        while (j >= 0 && strcmp(t[j].name, key.name) > 0) {
            t[j + 1] = t[j];
            j--;
        }
        t[j + 1] = key;
    }
}

struct big {
    double v[33];
    char s[100];
};

static struct big make_big(int seed)
{
    struct big b;
    for (int i = 0; i < 33; i++)
        b.v[i] = seed * 0.5 + i;
    rt_snprintf(b.s, sizeof b.s, "big %d", seed);
    return b;
}

int test_main(void)
{
    for (int i = 0; i < 40; i++)
        fill(&table[i], i);
    rt_printf("table checksum %08x\n", checksum(table, sizeof table));
    sort(table, 40);
    for (int i = 0; i < 40; i += 4)
        rt_printf("%2d %-24s id %3d score %10.4f stamp %lld tag %u\n", i, table[i].name,
                  table[i].id, table[i].score, table[i].stamp, table[i].tags[i % 37]);
    rt_printf("sorted checksum %08x\n", checksum(table, sizeof table));
    /* Struct return and copy. */
    struct big b1 = make_big(3), b2 = make_big(5);
    struct big b3 = b1;
    b1 = b2;
    rt_printf("%s %s %s v[32] %g %g %g\n", b1.s, b2.s, b3.s, b1.v[32], b2.v[32], b3.v[32]);
    /* memmove overlapping both ways, memset, memcmp. */
    char buf[200];
    for (int i = 0; i < 200; i++)
        buf[i] = (char)('A' + i % 26);
    memmove(buf + 10, buf, 100);
    memmove(buf + 101, buf + 103, 50);
    memset(buf + 180, '.', 19);
    buf[199] = 0;
    rt_printf("buf %s\n", buf);
    rt_printf("len %u cmp %d %d %d memcmp %d %d\n", (unsigned)strlen(buf), strcmp("abc", "abd"),
              strcmp("b", "a"), strcmp("same", "same"), memcmp(buf, buf + 26, 10),
              memcmp("x\x80", "x\x01", 2));
    /* Strings of every length and alignment. */
    char s[80];
    uint32_t h = 0;
    for (int len = 0; len < 70; len++) {
        for (int off = 0; off < 8; off++) {
            memset(s, 0, sizeof s);
            for (int k = 0; k < len; k++)
                s[off + k] = (char)('a' + (k * 5 + off) % 26);
            h = h * 31 + (uint32_t)strlen(s + off) + (uint32_t)(strchr(s + off, 'q') != 0);
        }
    }
    rt_printf("lengths hash %08x\n", h);
    char cat[64] = "con";
    strcat(cat, "cat");
    strcat(cat, "enated");
    rt_printf("%s %d\n", cat, (int)strlen(cat));
    return 0;
}
