/*
 * Debuggee for the DWARF type tests: globals of every kind of C type dbg prints (bit fields,
 * anonymous unions and structs, flexible and multi-dimensional arrays, enums, typedefs,
 * qualifiers, function pointers, self-referencing structs). Prints "ready <pid>" and waits.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef int pid_type;
typedef unsigned long ulong_t;

enum color { RED, GREEN = 5, BLUE = -2 };
enum flags { F_READ = 1, F_WRITE = 2, F_EXEC = 4 };

struct bits {
    unsigned int a : 3;
    signed int b : 5;
    unsigned int c : 1;
    unsigned long long wide : 40;
    int tail;
};

struct item {
    struct item *next;
    const char *label;
    volatile int hits;
    union {
        int as_int;
        float as_float;
    };
    struct {
        short x, y;
    } pos;
    enum color color;
    enum flags flags;
    struct bits bits;
    int grid[2][3];
    char name[12];
    pid_type owner;
    int (*handler)(int, const char *);
    double weight;
    unsigned char raw[4];
};

struct packet {
    uint32_t len;
    uint16_t kind;
    unsigned char data[];
};

union both {
    uint64_t word;
    uint8_t bytes[8];
};

static int handle(int n, const char *s) { return n + (int)strlen(s); }

struct item items[3];
struct item *item_head;
struct packet *packet_ptr;
union both both_val = {0x1122334455667788ULL};
const int const_int = -7;
ulong_t counter_ul = 123456789;
char *const msg_ptr = "a message";
int matrix[3][4][2];

int main(void) {
    for (int i = 0; i < 3; i++) {
        struct item *it = &items[i];
        it->next = i < 2 ? &items[i + 1] : NULL;
        it->label = i == 0 ? "first" : i == 1 ? "second" : "third";
        it->hits = i * 10 - 5;
        it->as_float = 1.5f * (float)(i + 1);
        it->pos.x = (short)(-i - 1);
        it->pos.y = (short)(i * 100);
        it->color = i == 0 ? RED : i == 1 ? GREEN : BLUE;
        it->flags = (enum flags)(F_READ | (i ? F_EXEC : 0));
        it->bits.a = (unsigned)(i + 5);
        it->bits.b = -3 - i;
        it->bits.c = (unsigned)(i & 1);
        it->bits.wide = 0x123456789aULL + (unsigned long long)i;
        it->bits.tail = 77 + i;
        for (int r = 0; r < 2; r++)
            for (int c = 0; c < 3; c++) it->grid[r][c] = r * 10 + c + i;
        snprintf(it->name, sizeof it->name, "item-%d", i);
        it->owner = 1000 + i;
        it->handler = handle;
        it->weight = 0.25 * (i + 1);
        memcpy(it->raw, "\x01\x02\x7f\xff", 4);
    }
    item_head = &items[0];
    packet_ptr = malloc(sizeof *packet_ptr + 5);
    packet_ptr->len = 5;
    packet_ptr->kind = 0x102;
    memcpy(packet_ptr->data, "hello", 5);
    for (int i = 0; i < 24; i++) ((int *)matrix)[i] = i;
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    for (;;) pause();
}
