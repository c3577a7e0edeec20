#include <cstdio>
int main() { std::puts("unigemma"); return 0; }
