import { Registry1764300000000 } from './1764300000000-Registry';
import { ConsoleEvents1764300100000 } from './1764300100000-ConsoleEvents';
import { DeviceHealth1764300400000 } from './1764300400000-DeviceHealth';
import { Alarms1764300500000 } from './1764300500000-Alarms';
import { Patrols1764300700000 } from './1764300700000-Patrols';
import { Compliance1764300800000 } from './1764300800000-Compliance';
import { Gb281811764300900000 } from './1764300900000-Gb28181';
import { DeviceStatusHot1764301000000 } from './1764301000000-DeviceStatusHot';
import { Notifications1764302400000 } from './1764302400000-Notifications';
import { VideoEvidence1764302500000 } from './1764302500000-VideoEvidence';
import { IncidentClientEvents1764311400000 } from './1764311400000-IncidentClientEvents';
import { DrillsAndButtonTests1764311611000 } from './1764311611000-DrillsAndButtonTests';
import { UnplacedDeviceAlarms1764311700000 } from './1764311700000-UnplacedDeviceAlarms';
import { TokenRevocations1764313700000 } from './1764313700000-TokenRevocations';
import { IncidentEvidence1764315100000 } from './1764315100000-IncidentEvidence';
import { PostGateCamera1764316900000 } from './1764316900000-PostGateCamera';
import { GbDeviceCharset1764318100000 } from './1764318100000-GbDeviceCharset';
import { SchoolCard1764318500000 } from './1764318500000-SchoolCard';
import { ShiftHandovers1764318700000 } from './1764318700000-ShiftHandovers';
import { OpenDeviceIncidentPerDrill1764320100000 } from './1764320100000-OpenDeviceIncidentPerDrill';
import { GbCatalogSemantics1764320500000 } from './1764320500000-GbCatalogSemantics';
import { GbAuthUsername1764320700000 } from './1764320700000-GbAuthUsername';
import { ComplianceIntegrity1764320800000 } from './1764320800000-ComplianceIntegrity';
import { DeviceEventRepeatWindow1764321000000 } from './1764321000000-DeviceEventRepeatWindow';
import { OpenDeviceIncidentPerSpot1764321010000 } from './1764321010000-OpenDeviceIncidentPerSpot';
import { MadeRealOutsideOpenDeviceIndex1764321020000 } from './1764321020000-MadeRealOutsideOpenDeviceIndex';
import { PartitionAuditAndTransitions1764321230000 } from './1764321230000-PartitionAuditAndTransitions';
import { RetentionTimeIndexes1764321240000 } from './1764321240000-RetentionTimeIndexes';
import { GbHeartbeatParams1764321260000 } from './1764321260000-GbHeartbeatParams';
import { OpenCheckinPerPerson1764321400000 } from './1764321400000-OpenCheckinPerPerson';
import { WithdrawAttempts1764321500000 } from './1764321500000-WithdrawAttempts';
import { AlarmOutboxDoneIndex1764321700000 } from './1764321700000-AlarmOutboxDoneIndex';
import { AlarmPhotoPosition1764321900000 } from './1764321900000-AlarmPhotoPosition';
import { MaintenanceWindowsDevices1764321900100 } from './1764321900100-MaintenanceWindowsDevices';
import { GbCascade1764322000000 } from './1764322000000-GbCascade';
import { PhotoUploadHash1764322200000 } from './1764322200000-PhotoUploadHash';
import { CameraMediaSettings1764323200000 } from './1764323200000-CameraMediaSettings';
import { CheckinPersonKey1764323500000 } from './1764323500000-CheckinPersonKey';
import { IncidentOpenDeviceIndex1764323900000 } from './1764323900000-IncidentOpenDeviceIndex';
import { EvidenceSource1764324500000 } from './1764324500000-EvidenceSource';
import { TaskReopen1764325000000 } from './1764325000000-TaskReopen';
import { TaskClosePhotos1764325640000 } from './1764325640000-TaskClosePhotos';
import { DutyShiftMilliseconds1764326100000 } from './1764326100000-DutyShiftMilliseconds';
import { GuardLicenceUpperCase1764327200000 } from './1764327200000-GuardLicenceUpperCase';

/** Every migration, in order. A capability adds its own file here; never edit a landed one. */
export const MIGRATIONS = [
  Registry1764300000000,
  ConsoleEvents1764300100000,
  DeviceHealth1764300400000,
  Alarms1764300500000,
  Patrols1764300700000,
  Compliance1764300800000,
  Gb281811764300900000,
  DeviceStatusHot1764301000000,
  Notifications1764302400000,
  VideoEvidence1764302500000,
  IncidentClientEvents1764311400000,
  DrillsAndButtonTests1764311611000,
  UnplacedDeviceAlarms1764311700000,
  TokenRevocations1764313700000,
  IncidentEvidence1764315100000,
  PostGateCamera1764316900000,
  GbDeviceCharset1764318100000,
  SchoolCard1764318500000,
  ShiftHandovers1764318700000,
  OpenDeviceIncidentPerDrill1764320100000,
  GbCatalogSemantics1764320500000,
  GbAuthUsername1764320700000,
  ComplianceIntegrity1764320800000,
  DeviceEventRepeatWindow1764321000000,
  OpenDeviceIncidentPerSpot1764321010000,
  MadeRealOutsideOpenDeviceIndex1764321020000,
  PartitionAuditAndTransitions1764321230000,
  RetentionTimeIndexes1764321240000,
  GbHeartbeatParams1764321260000,
  OpenCheckinPerPerson1764321400000,
  WithdrawAttempts1764321500000,
  AlarmOutboxDoneIndex1764321700000,
  AlarmPhotoPosition1764321900000,
  MaintenanceWindowsDevices1764321900100,
  GbCascade1764322000000,
  PhotoUploadHash1764322200000,
  CameraMediaSettings1764323200000,
  CheckinPersonKey1764323500000,
  IncidentOpenDeviceIndex1764323900000,
  EvidenceSource1764324500000,
  TaskReopen1764325000000,
  TaskClosePhotos1764325640000,
  DutyShiftMilliseconds1764326100000,
  GuardLicenceUpperCase1764327200000,
];
