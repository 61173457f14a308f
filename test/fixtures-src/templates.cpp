/* C++ for the type reader: templates (a name with its arguments, a template argument that is
 * itself a template), a namespace, a base class with a vtable pointer, a reference member; blocked
 * in pause() for gcore. */
#include <cstdio>
#include <unistd.h>
namespace geo {
template <typename T, int N> struct Vec {
    T v[N];
    static const int dims = N;
    T sum() const { T s = 0; for (int i = 0; i < N; i++) s += v[i]; return s; }
};
struct Base { int id; virtual ~Base() {} };
struct Shape : Base {
    Vec<double, 2> origin;
    const char *name;
    int &ref;
    Shape(int &r) : ref(r) {}
};
template <typename K, typename V> struct Pair { K key; V value; };
}
int counter = 7;
geo::Vec<int, 3> vi = {{1, 2, 3}};
geo::Pair<int, geo::Vec<float, 2>> pv = {4, {{0.5f, 1.5f}}};
geo::Shape *shape;
volatile int sink;
__attribute__((noipa)) void wait_here(geo::Shape &s) {
    sink = s.id + vi.sum();
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    for (;;) pause();
}
int main() {
    geo::Shape s(counter);
    s.id = 3; s.origin = {{1.25, -2.5}}; s.name = "circle";
    shape = &s;
    wait_here(s);
}
