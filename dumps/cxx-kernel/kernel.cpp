// dbg's C++ sample guest: a freestanding C++ kernel (no exceptions, no RTTI, no runtime) with
// namespaces, classes, overloads and templates, so that tests and users set breakpoints by
// unmangled names (`Scheduler::tick`, `ns::Foo::bar(int)`, `max<long>`). It boots on the dbg
// machine with the C sample kernel's multiboot entry (../kernel/boot.S), runs ROUNDS rounds of
// its work on CPU 0, prints a summary on COM1 and halts (cli; hlt).

typedef __UINT8_TYPE__ u8;
typedef __UINT16_TYPE__ u16;
typedef __UINT32_TYPE__ u32;
typedef __UINT64_TYPE__ u64;

#define NOINLINE __attribute__((noinline))

namespace io {

inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }

class Serial {
public:
    NOINLINE void put(char c) { outb(0x3f8, static_cast<u8>(c)); }
    NOINLINE void put(const char *s) {
        while (*s) put(*s++);
    }
    NOINLINE void put(u64 v) {
        char buf[21];
        int n = 0;
        do buf[n++] = static_cast<char>('0' + v % 10); while ((v /= 10) != 0);
        while (n) put(buf[--n]);
    }
};

} // namespace io

static io::Serial com1;

namespace ns {

class Foo {
public:
    explicit Foo(int seed) : state_(seed) {}
    NOINLINE int bar(int x) { return state_ += x; }
    NOINLINE int bar(const char *s) {
        while (*s) state_ += *s++;
        return state_;
    }
    NOINLINE int bar(int x, int y) const { return state_ * x + y; }
    int state() const { return state_; }

private:
    int state_;
};

} // namespace ns

template <typename T> NOINLINE T max(T a, T b) { return a > b ? a : b; }

template <typename T, int N> class Ring {
public:
    NOINLINE void push(T v) {
        items_[head_] = v;
        head_ = (head_ + 1) % N;
    }
    NOINLINE T sum() const {
        T s = 0;
        for (int i = 0; i < N; i++) s += items_[i];
        return s;
    }

private:
    T items_[N] = {};
    int head_ = 0;
};

class Scheduler {
public:
    NOINLINE void tick() { ++ticks_; }
    u64 ticks() const { return ticks_; }

private:
    u64 ticks_ = 0;
};

static Scheduler scheduler;
static const int ROUNDS = 100;

extern "C" {

// The timer vector of boot.S; this kernel never starts the timer.
void timer_tick() {}

// boot.S's secondary-CPU entry: this kernel runs on CPU 0 alone.
void ap_main(u64) {
    for (;;) __asm__ volatile("cli; hlt");
}

void kmain(u32 magic, u32) {
    com1.put("dbg C++ sample kernel: multiboot magic ");
    com1.put(static_cast<u64>(magic));
    com1.put('\n');
    ns::Foo foo(1);
    Ring<int, 8> ring;
    long best = 0;
    for (int i = 0; i < ROUNDS; i++) {
        scheduler.tick();
        foo.bar(i);
        foo.bar("tick");
        ring.push(foo.bar(i, 3) & 0xff);
        best = max<long>(best, max<int>(i, foo.state() & 0x3ff));
    }
    com1.put("ticks ");
    com1.put(scheduler.ticks());
    com1.put(", state ");
    com1.put(static_cast<u64>(foo.state()));
    com1.put(", ring ");
    com1.put(static_cast<u64>(ring.sum()));
    com1.put(", max ");
    com1.put(static_cast<u64>(best));
    com1.put('\n');
}

} // extern "C"
