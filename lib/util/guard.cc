#include "util/guard.h"

#include <filesystem>
#include <ios>
#include <new>
#include <stdexcept>

namespace palettize {

Status StatusFromCurrentException(const std::string& where) {
  const std::string prefix = where.empty() ? "" : where + ": ";
  try {
    throw;
  } catch (const std::filesystem::filesystem_error& e) {
    return Status::IOError(prefix + e.what());
  } catch (const std::ios_base::failure& e) {
    return Status::IOError(prefix + e.what());
  } catch (const std::bad_alloc&) {
    return Status::IOError(prefix + "out of memory");
  } catch (const std::exception& e) {
    return Status::InvalidInput(prefix + "unexpected error: " + e.what());
  } catch (...) {
    return Status::InvalidInput(prefix + "unexpected error of unknown kind");
  }
}

}  // namespace palettize
