#include "messages/schemas.hpp"

namespace sluice {

void add_message_types(caf::actor_system_config& cfg) {
#define SLUICE_ADD_TYPE(name)                                                  \
  cfg.add_message_type<msg<wire::name>>(schema_name<wire::name>::value);
  SLUICE_MESSAGE_SCHEMAS(SLUICE_ADD_TYPE)
#undef SLUICE_ADD_TYPE
}

} // namespace sluice
