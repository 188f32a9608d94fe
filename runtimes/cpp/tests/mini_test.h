// A tiny test harness: TEST(name) { CHECK(...); CHECK_NEAR(a, b, tol); CHECK_THROWS_WITH(expr, Type, "text"); }
// main() runs every test (or those whose name contains argv[1]) and exits non-zero if any check failed.
#pragma once

#include <cmath>
#include <cstdio>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace mini_test {

struct Case {
    const char* name;
    std::function<void()> body;
};

inline std::vector<Case>& registry() {
    static std::vector<Case> cases;
    return cases;
}

inline int& failures() {
    static int count = 0;
    return count;
}

struct Register {
    Register(const char* name, std::function<void()> body) { registry().push_back({name, std::move(body)}); }
};

inline void fail(const char* file, int line, const std::string& what) {
    ++failures();
    std::fprintf(stderr, "  FAILED %s:%d: %s\n", file, line, what.c_str());
}

inline int run_all(int argc, char** argv) {
    const std::string filter = argc > 1 ? argv[1] : "";
    int ran = 0;
    for (const Case& c : registry()) {
        if (!filter.empty() && std::string(c.name).find(filter) == std::string::npos) continue;
        const int before = failures();
        try {
            c.body();
        } catch (const std::exception& e) {
            fail(c.name, 0, std::string("unexpected exception: ") + e.what());
        }
        std::printf("%s %s\n", failures() == before ? "ok  " : "FAIL", c.name);
        ++ran;
    }
    std::printf("%d tests, %d failed checks\n", ran, failures());
    return failures() == 0 && ran > 0 ? 0 : 1;
}

}  // namespace mini_test

#define MT_CONCAT_(a, b) a##b
#define MT_CONCAT(a, b) MT_CONCAT_(a, b)
#define TEST(name)                                                               \
    static void name();                                                          \
    static mini_test::Register MT_CONCAT(register_, name)(#name, name);          \
    static void name()

#define CHECK(condition) \
    do { if (!(condition)) mini_test::fail(__FILE__, __LINE__, #condition); } while (0)

#define CHECK_EQ(a, b)                                                                          \
    do {                                                                                        \
        const auto va_ = (a);                                                                   \
        const auto vb_ = (b);                                                                   \
        if (!(va_ == vb_)) {                                                                    \
            std::ostringstream os_;                                                             \
            os_ << #a << " == " << #b << " (" << va_ << " vs " << vb_ << ")";                   \
            mini_test::fail(__FILE__, __LINE__, os_.str());                                     \
        }                                                                                       \
    } while (0)

#define CHECK_NEAR(a, b, tolerance)                                                             \
    do {                                                                                        \
        const double va_ = (a), vb_ = (b);                                                      \
        if (!(std::fabs(va_ - vb_) <= (tolerance))) {                                           \
            std::ostringstream os_;                                                             \
            os_ << #a << " ~= " << #b << " (" << va_ << " vs " << vb_ << ")";                   \
            mini_test::fail(__FILE__, __LINE__, os_.str());                                     \
        }                                                                                       \
    } while (0)

// expr must throw `type` whose what() contains `text`.
#define CHECK_THROWS_WITH(expr, type, text)                                                     \
    do {                                                                                        \
        try {                                                                                   \
            (void)(expr);                                                                       \
            mini_test::fail(__FILE__, __LINE__, #expr " did not throw " #type);                 \
        } catch (const type& e_) {                                                              \
            if (std::string(e_.what()).find(text) == std::string::npos)                         \
                mini_test::fail(__FILE__, __LINE__, std::string(#type " message lacks \"") + (text) + "\": " + e_.what()); \
        }                                                                                       \
    } while (0)
