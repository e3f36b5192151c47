#include "core/proc_file.h"

#include <fstream>
#include <string>

namespace tandem {

size_t proc_kib_field_bytes(const char* path, std::string_view key) {
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key, 0) == 0) return static_cast<size_t>(std::stoull(line.substr(key.size()))) * 1024;
  return 0;
}

}  // namespace tandem
