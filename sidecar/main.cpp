#include <cstdio>
int main() { std::puts("acme-sidecar"); return 0; }
