// DNS as data: the record set and its zone-file rendering.
export {
  relayRecords,
  rdata,
  splitTxt,
  dkimValue,
  mtaStsPolicy,
  mtaStsId,
  type DnsRecord,
  type DnsFacts,
} from "./records";
export { zoneFile } from "./zonefile";
