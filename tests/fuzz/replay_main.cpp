// One corpus replayer for every fuzz target (tests/fuzz/*): gcc builds and CI run the seeds through it.
// Replays a seed corpus through LLVMFuzzerTestOneInput without libFuzzer (gcc builds): every file,
// its prefixes (at a stride for large inputs) and single-byte variants, so truncations and stray
// bytes are covered even without a fuzzing engine. At most ~64 cut points per input: 256 made the
// replays the slowest tests of the suite under ASan, and tests/run-fuzz explores beyond them anyway.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {
void run(const std::string& s) { LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()); }

void replay(const std::string& input) {
  run(input);
  std::size_t stride = input.size() > 64 ? input.size() / 64 : 1;
  for (std::size_t n = 0; n < input.size(); n += stride) run(input.substr(0, n));
  static const char kBytes[] = {'\0', '"', '{', ']', '\n', '\xff'};
  for (std::size_t i = 0; i < input.size(); i += stride)
    for (char b : kBytes) {
      std::string v = input;
      v[i] = b;
      run(v);
    }
}
}  // namespace

int main(int argc, char** argv) {
  std::size_t files = 0;
  for (int i = 1; i < argc; ++i) {
    std::vector<std::filesystem::path> paths;
    if (std::filesystem::is_directory(argv[i])) {
      for (const auto& e : std::filesystem::directory_iterator(argv[i]))
        if (e.is_regular_file()) paths.push_back(e.path());
    } else {
      paths.emplace_back(argv[i]);
    }
    for (const auto& p : paths) {
      std::ifstream in(p, std::ios::binary);
      if (!in) {
        std::fprintf(stderr, "cannot read %s\n", p.c_str());
        return 2;
      }
      replay(std::string(std::istreambuf_iterator<char>(in), {}));
      ++files;
    }
  }
  std::printf("replayed %zu inputs\n", files);
  return files == 0 ? 2 : 0;
}
