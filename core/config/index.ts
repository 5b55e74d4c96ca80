// The relay's configuration: options table, loading and validation, chatmail.ini mapping.
export { ConfigError } from "./option";
export { OPTIONS, LANGUAGES, type RelayConfig, type OptionName } from "./options";
export { loadConfig, parseSizeMb, irohRelayUrl, runsOwnIrohRelay, OPTION_NAMES } from "./load";
export { checkDeployRules } from "./rules";
export { dkimPublicKey } from "./dkim";
export { appVersionsJson } from "./appVersions";
export { parseChatmailIni, renderChatmailIni, iniKey } from "./ini";
