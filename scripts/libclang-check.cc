// Does the libclang that bindgen would load parse `#include <stddef.h>`?
//
// RocksDB's Rust bindings are generated at build time by bindgen, which loads
// libclang at run time (clang-sys's `runtime` feature). A machine can have the
// library (Debian's libclang1-N) without the compiler's own headers, which it
// looks for in its resource directory (Debian's libclang-common-N-dev puts
// them in /usr/lib/llvm-N/lib/clang/<version>/include, linked from
// /usr/include/clang/<version>/include): bindgen then fails, 15 minutes
// into the first build, with "'stddef.h' file not found". This program
// finds the library as clang-sys 1.9 does (LIBCLANG_PATH alone if set; else
// `llvm-config --prefix`, LD_LIBRARY_PATH, LIBRARY_PATH and the usual
// directories; the highest version found), loads it as bindgen does and asks
// it to parse a header that includes <stddef.h>.
//
// Exit status: 0 it parses; 1 it does not (the error is printed); 2 no
// libclang was found; 3 the library could not be loaded. The library used is
// printed first. Built and run by scripts/deps.sh (`--check-libclang`).

#include <dlfcn.h>
#include <glob.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace {

struct Found {
    std::string directory;
    std::string filename;
};

// `text` with the characters glob treats specially escaped.
std::string escape(const std::string& text) {
    std::string escaped;
    for (char c : text) {
        if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') {
            escaped += '\\';
        }
        escaped += c;
    }
    return escaped;
}

std::vector<std::string> glob_paths(const std::string& pattern) {
    std::vector<std::string> paths;
    glob_t matches;
    if (glob(pattern.c_str(), 0, nullptr, &matches) == 0) {
        for (size_t i = 0; i < matches.gl_pathc; ++i) {
            paths.emplace_back(matches.gl_pathv[i]);
        }
    }
    globfree(&matches);
    return paths;
}

const char* const kFilenames[] = {"libclang.so", "libclang-*.so", "libclang.so.*", "libclang-*.so.*"};

// The libraries in `directory` (not LLVM's C++ library, libclang-cpp).
std::vector<Found> search_directory(const std::string& directory) {
    std::vector<Found> found;
    for (const char* filename : kFilenames) {
        for (const std::string& path : glob_paths(escape(directory) + "/" + filename)) {
            size_t slash = path.rfind('/');
            std::string name = path.substr(slash + 1);
            if (name.find("-cpp.") != std::string::npos) {
                continue;
            }
            found.push_back({path.substr(0, slash), name});
        }
    }
    return found;
}

bool is_directory(const std::string& path) {
    glob_t matches;
    bool directory = glob(escape(path).c_str(), GLOB_MARK, nullptr, &matches) == 0 &&
                     matches.gl_pathc == 1 && matches.gl_pathv[0][strlen(matches.gl_pathv[0]) - 1] == '/';
    globfree(&matches);
    return directory;
}

void append(std::vector<Found>& to, const std::vector<Found>& found) {
    to.insert(to.end(), found.begin(), found.end());
}

std::vector<std::string> split_paths(const char* list) {
    std::vector<std::string> paths;
    if (list == nullptr) {
        return paths;
    }
    std::string rest = list;
    size_t start = 0;
    while (start <= rest.size()) {
        size_t end = rest.find(':', start);
        if (end == std::string::npos) {
            end = rest.size();
        }
        paths.push_back(rest.substr(start, end - start));
        start = end + 1;
    }
    return paths;
}

std::vector<Found> candidates() {
    if (const char* variable = std::getenv("LIBCLANG_PATH")) {
        std::string path = variable;
        while (path.size() > 1 && path.back() == '/') {
            path.pop_back();
        }
        // A file named by the variable, if it is one of the libraries.
        size_t slash = path.rfind('/');
        if (slash != std::string::npos) {
            std::string parent = slash == 0 ? "/" : path.substr(0, slash);
            std::string filename = path.substr(slash + 1);
            for (const Found& found : search_directory(parent)) {
                if (found.filename == filename) {
                    return {found};
                }
            }
        }
        return search_directory(path);
    }
    std::vector<Found> found;
    const char* llvm_config = std::getenv("LLVM_CONFIG_PATH");
    std::string command = std::string(llvm_config ? llvm_config : "llvm-config") + " --prefix 2>/dev/null";
    if (FILE* output = popen(command.c_str(), "r")) {
        char line[4096];
        bool read = std::fgets(line, sizeof line, output) != nullptr;
        if (pclose(output) == 0 && read) {
            std::string prefix = line;
            prefix.erase(prefix.find_last_not_of("\r\n") + 1);
            for (const char* sub : {"/bin", "/lib", "/lib64"}) {
                append(found, search_directory(prefix + sub));
            }
        }
    }
    for (const char* variable : {"LD_LIBRARY_PATH", "LIBRARY_PATH"}) {
        for (const std::string& directory : split_paths(std::getenv(variable))) {
            append(found, search_directory(directory));
        }
    }
    for (const char* pattern : {"/usr/local/llvm*/lib*", "/usr/local/lib*/*/*", "/usr/local/lib*/*",
                                "/usr/local/lib*", "/usr/lib*/*/*", "/usr/lib*/*", "/usr/lib*"}) {
        for (const std::string& directory : glob_paths(pattern)) {
            if (is_directory(directory)) {
                append(found, search_directory(directory));
            }
        }
    }
    return found;
}

// A 64-bit ELF shared object, as clang-sys checks.
bool is_elf64(const std::string& path) {
    unsigned char header[5] = {0};
    FILE* file = std::fopen(path.c_str(), "rb");
    if (file == nullptr) {
        return false;
    }
    size_t read = std::fread(header, 1, sizeof header, file);
    std::fclose(file);
    return read == sizeof header && std::memcmp(header, "\x7f" "ELF", 4) == 0 && header[4] == 2;
}

// The version clang-sys reads from a library's file name.
std::vector<unsigned> version_of(const std::string& filename) {
    std::string version;
    if (filename.rfind("libclang.so.", 0) == 0) {
        version = filename.substr(12);
    } else if (filename.rfind("libclang-", 0) == 0 && filename.size() >= 12) {
        version = filename.substr(9, filename.size() - 12);
    } else {
        return {};
    }
    std::vector<unsigned> parts;
    size_t start = 0;
    while (true) {
        size_t end = version.find('.', start);
        std::string part = version.substr(start, end == std::string::npos ? std::string::npos : end - start);
        char* rest = nullptr;
        unsigned long number = std::strtoul(part.c_str(), &rest, 10);
        parts.push_back(!part.empty() && *rest == '\0' ? static_cast<unsigned>(number) : 0);
        if (end == std::string::npos) {
            break;
        }
        start = end + 1;
    }
    return parts;
}

struct CXString {
    const void* data;
    unsigned private_flags;
};

struct CXUnsavedFile {
    const char* filename;
    const char* contents;
    unsigned long length;
};

template <typename F>
F symbol(void* library, const char* name) {
    return reinterpret_cast<F>(dlsym(library, name));
}

}  // namespace

int main() {
    std::vector<Found> found;
    for (const Found& library : candidates()) {
        if (is_elf64(library.directory + "/" + library.filename)) {
            found.push_back(library);
        }
    }
    if (found.empty()) {
        std::printf("no libclang found (LIBCLANG_PATH=%s)\n", std::getenv("LIBCLANG_PATH") ? std::getenv("LIBCLANG_PATH") : "");
        return 2;
    }
    // The highest version; of equal ones, the first found.
    const Found* chosen = &found[0];
    for (const Found& library : found) {
        if (version_of(library.filename) > version_of(chosen->filename)) {
            chosen = &library;
        }
    }
    std::string path = chosen->directory + "/" + chosen->filename;
    std::printf("libclang: %s\n", path.c_str());
    void* library = dlopen(path.c_str(), RTLD_LAZY | RTLD_LOCAL);
    if (library == nullptr) {
        std::printf("cannot load it: %s\n", dlerror());
        return 3;
    }
    auto create_index = symbol<void* (*)(int, int)>(library, "clang_createIndex");
    auto parse = symbol<void* (*)(void*, const char*, const char* const*, int, CXUnsavedFile*, unsigned, unsigned)>(
        library, "clang_parseTranslationUnit");
    auto diagnostics = symbol<unsigned (*)(void*)>(library, "clang_getNumDiagnostics");
    auto diagnostic = symbol<void* (*)(void*, unsigned)>(library, "clang_getDiagnostic");
    auto severity = symbol<int (*)(void*)>(library, "clang_getDiagnosticSeverity");
    auto format = symbol<CXString (*)(void*, unsigned)>(library, "clang_formatDiagnostic");
    auto text = symbol<const char* (*)(CXString)>(library, "clang_getCString");
    if (!create_index || !parse || !diagnostics || !diagnostic || !severity || !format || !text) {
        std::printf("it lacks libclang's C interface\n");
        return 3;
    }
    char header[] = "#include <stddef.h>\nsize_t probe;\n";
    CXUnsavedFile file = {"rocksmq-libclang-check.h", header, sizeof header - 1};
    void* unit = parse(create_index(0, 0), file.filename, nullptr, 0, &file, 1, 0);
    if (unit == nullptr) {
        std::printf("it could not parse a header\n");
        return 1;
    }
    const int kError = 3;
    for (unsigned i = 0; i < diagnostics(unit); ++i) {
        void* found_diagnostic = diagnostic(unit, i);
        if (severity(found_diagnostic) >= kError) {
            std::printf("it cannot parse #include <stddef.h>: %s\n", text(format(found_diagnostic, 0)));
            return 1;
        }
    }
    std::printf("it parses #include <stddef.h>\n");
    return 0;
}
