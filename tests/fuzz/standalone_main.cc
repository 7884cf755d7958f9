// Plain driver for the fuzz targets when libFuzzer is unavailable (e.g. GCC):
// runs LLVMFuzzerTestOneInput once per file named on the command line, so a
// corpus or a crash reproducer can be replayed under any sanitizer.
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::ifstream in(argv[i], std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
  }
  std::printf("ran %d inputs\n", argc - 1);
  return 0;
}
