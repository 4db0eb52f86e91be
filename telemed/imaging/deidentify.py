"""De-identification for teaching or sharing outside the consortium: the DICOM PS3.15
Annex E Basic Application Level Confidentiality Profile.

Attributes of the profile's table are removed (X), emptied (Z) or replaced with a dummy
(D); private tags are removed; every UID that identifies an instance, series, study,
frame of reference or device is replaced with one derived from it and a secret of the
export, so references between the files of the export stay consistent.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

# PS3.15 Table E.1-1, Basic Profile column (the attributes that occur in practice).
# D: replace with a dummy value; Z: zero length; X: remove; U: replace UID (below).
BASIC_PROFILE: dict[str, str] = {
    "AccessionNumber": "Z",
    "AcquisitionComments": "X",
    "AcquisitionDeviceProcessingDescription": "X",
    "AcquisitionProtocolDescription": "X",
    "ActualHumanPerformersSequence": "X",
    "AdditionalPatientHistory": "X",
    "AdmissionID": "X",
    "AdmittingDiagnosesCodeSequence": "X",
    "AdmittingDiagnosesDescription": "X",
    "Allergies": "X",
    "Arbitrary": "X",
    "AuthorObserverSequence": "X",
    "BranchOfService": "X",
    "CommentsOnThePerformedProcedureStep": "X",
    "ConfidentialityConstraintOnPatientDataDescription": "X",
    "ContentCreatorName": "Z",
    "ContentCreatorIdentificationCodeSequence": "X",
    "ContributionDescription": "X",
    "CountryOfResidence": "X",
    "CurrentPatientLocation": "X",
    "CustodialOrganizationSequence": "X",
    "DataSetTrailingPadding": "X",
    "DerivationDescription": "X",
    "DeviceSerialNumber": "X",
    "DigitalSignaturesSequence": "X",
    "DischargeDiagnosisDescription": "X",
    "EthnicGroup": "X",
    "FillerOrderNumberImagingServiceRequest": "Z",
    "FrameComments": "X",
    "GantryID": "X",
    "GeneratorID": "X",
    "IconImageSequence": "X",
    "IdentifyingComments": "X",
    "ImageComments": "X",
    "ImagePresentationComments": "X",
    "ImagingServiceRequestComments": "X",
    "Impressions": "X",
    "InstitutionAddress": "X",
    "InstitutionalDepartmentName": "X",
    "InstitutionName": "X",
    "InstitutionCodeSequence": "X",
    "InterpretationApproverSequence": "X",
    "InterpretationAuthor": "X",
    "InterpretationDiagnosisDescription": "X",
    "InterpretationRecorder": "X",
    "InterpretationText": "X",
    "InterpretationTranscriber": "X",
    "IssuerOfAdmissionID": "X",
    "IssuerOfPatientID": "X",
    "MedicalAlerts": "X",
    "MedicalRecordLocator": "X",
    "MilitaryRank": "X",
    "ModifiedAttributesSequence": "X",
    "ModifyingDeviceID": "X",
    "NameOfPhysiciansReadingStudy": "X",
    "NamesOfIntendedRecipientsOfResults": "X",
    "Occupation": "X",
    "OperatorsName": "X",
    "OperatorIdentificationSequence": "X",
    "OriginalAttributesSequence": "X",
    "OrderCallbackPhoneNumber": "X",
    "OrderEnteredBy": "X",
    "OrderEntererLocation": "X",
    "OtherPatientIDs": "X",
    "OtherPatientIDsSequence": "X",
    "OtherPatientNames": "X",
    "PatientAddress": "X",
    "PatientAge": "X",
    "PatientBirthDate": "Z",
    "PatientBirthName": "X",
    "PatientBirthTime": "X",
    "PatientComments": "X",
    "PatientID": "Z",
    "PatientInsurancePlanCodeSequence": "X",
    "PatientMotherBirthName": "X",
    "PatientName": "Z",
    "PatientPrimaryLanguageCodeSequence": "X",
    "PatientReligiousPreference": "X",
    "PatientSex": "Z",
    "PatientSexNeutered": "X",
    "PatientSize": "X",
    "PatientState": "X",
    "PatientTelephoneNumbers": "X",
    "PatientTransportArrangements": "X",
    "PatientWeight": "X",
    "PerformedLocation": "X",
    "PerformedProcedureStepDescription": "X",
    "PerformedProcedureStepID": "X",
    "PerformingPhysicianIdentificationSequence": "X",
    "PerformingPhysicianName": "X",
    "PersonAddress": "X",
    "PersonName": "D",
    "PersonTelephoneNumbers": "X",
    "PhysicianApprovingInterpretation": "X",
    "PhysiciansOfRecord": "X",
    "PhysiciansOfRecordIdentificationSequence": "X",
    "PhysiciansReadingStudyIdentificationSequence": "X",
    "PlacerOrderNumberImagingServiceRequest": "Z",
    "PlateID": "X",
    "PreMedication": "X",
    "PregnancyStatus": "X",
    "ReasonForTheImagingServiceRequest": "X",
    "ReasonForStudy": "X",
    "ReferencedPatientAliasSequence": "X",
    "ReferencedPatientSequence": "X",
    "ReferencedStudySequence": "X",
    "ReferringPhysicianAddress": "X",
    "ReferringPhysicianIdentificationSequence": "X",
    "ReferringPhysicianName": "Z",
    "ReferringPhysicianTelephoneNumbers": "X",
    "RegionOfResidence": "X",
    "RequestAttributesSequence": "X",
    "RequestedContrastAgent": "X",
    "RequestedProcedureComments": "X",
    "RequestedProcedureDescription": "X",
    "RequestedProcedureID": "X",
    "RequestedProcedureLocation": "X",
    "RequestingPhysician": "X",
    "RequestingService": "X",
    "ResponsibleOrganization": "X",
    "ResponsiblePerson": "X",
    "ResultsComments": "X",
    "ResultsDistributionListSequence": "X",
    "ResultsIDIssuer": "X",
    "ScheduledHumanPerformersSequence": "X",
    "ScheduledPatientInstitutionResidence": "X",
    "ScheduledPerformingPhysicianIdentificationSequence": "X",
    "ScheduledPerformingPhysicianName": "X",
    "ScheduledProcedureStepDescription": "X",
    "SeriesDescription": "X",
    "ServiceEpisodeDescription": "X",
    "ServiceEpisodeID": "X",
    "SmokingStatus": "X",
    "SourceImageSequence": "X",
    "SpecialNeeds": "X",
    "StationName": "X",
    "StudyComments": "X",
    "StudyDate": "Z",
    "StudyDescription": "X",
    "StudyID": "Z",
    "StudyIDIssuer": "X",
    "StudyTime": "Z",
    "TextComments": "X",
    "TextString": "X",
    "TopicAuthor": "X",
    "TopicKeywords": "X",
    "TopicSubject": "X",
    "TopicTitle": "X",
    "VerifyingObserverIdentificationCodeSequence": "X",
    "VerifyingObserverName": "D",
    "VerifyingObserverSequence": "X",
    "VerifyingOrganization": "X",
    "VisitComments": "X",
    "AcquisitionDate": "X",
    "AcquisitionTime": "X",
    "AcquisitionDateTime": "X",
    "ContentDate": "Z",
    "ContentTime": "Z",
    "InstanceCreationDate": "X",
    "InstanceCreationTime": "X",
    "SeriesDate": "X",
    "SeriesTime": "X",
    "OverlayDate": "X",
    "OverlayTime": "X",
    "CurveDate": "X",
    "CurveTime": "X",
    "InstanceCreatorUID": "U",
    # The exam's own dates and times (the performed and scheduled procedure steps, the
    # study's reading and verification): X in the table.
    "PerformedProcedureStepStartDate": "X",
    "PerformedProcedureStepStartTime": "X",
    "PerformedProcedureStepEndDate": "X",
    "PerformedProcedureStepEndTime": "X",
    "ScheduledProcedureStepStartDate": "X",
    "ScheduledProcedureStepStartTime": "X",
    "ScheduledProcedureStepEndDate": "X",
    "ScheduledProcedureStepEndTime": "X",
    "StudyVerifiedDate": "X",
    "StudyVerifiedTime": "X",
    "StudyReadDate": "X",
    "StudyReadTime": "X",
    "StudyArrivalDate": "X",
    "StudyArrivalTime": "X",
    "StudyCompletionDate": "X",
    "StudyCompletionTime": "X",
    "AdmittingDate": "X",
    "AdmittingTime": "X",
    "DischargeDate": "X",
    "DischargeTime": "X",
    "LastMenstrualDate": "X",
    "DateOfLastCalibration": "X",
    "TimeOfLastCalibration": "X",
    "DateOfSecondaryCapture": "X",
    "TimeOfSecondaryCapture": "X",
    "DateOfLastDetectorCalibration": "X",
    "TimeOfLastDetectorCalibration": "X",
    "FrameAcquisitionDateTime": "X",
    "FrameReferenceDateTime": "X",
    "ReferencedDateTime": "X",
    "StartAcquisitionDateTime": "X",
    "EndAcquisitionDateTime": "X",
    "RadiopharmaceuticalStartDateTime": "X",
    "RadiopharmaceuticalStopDateTime": "X",
    "RadiopharmaceuticalStartTime": "X",
    "RadiopharmaceuticalStopTime": "X",
    "ContributionDateTime": "X",
    "InterpretationRecordedDate": "X",
    "InterpretationRecordedTime": "X",
    "InterpretationApprovalDate": "X",
    "InterpretationApprovalTime": "X",
    "IssueDateOfImagingServiceRequest": "X",
    "IssueTimeOfImagingServiceRequest": "X",
    "ObservationDateTime": "X",
    "VerificationDateTime": "X",
}

# Every date, time and date-time the profile's table lists is removed or emptied unless
# the Retain Longitudinal Temporal Information (Full Dates) option is asked for; one the
# table above does not name is removed too (the table lists the ones the IODs define,
# and an unnamed one is as telling). With the option, dates and times are kept (K).
TEMPORAL_VRS = frozenset({"DA", "DT", "TM"})

# UIDs of the standard (SOP classes, transfer syntaxes, coding schemes) are not identifying.
STANDARD_UID_ROOT = "1.2.840.10008."


class UidMap:
    """Old UID → new UID, the same for every file of one export."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self.seen: dict[str, str] = {}

    def __call__(self, uid: str) -> str:
        uid = str(uid)
        if uid.startswith(STANDARD_UID_ROOT) or not uid:
            return uid
        new = self.seen.get(uid)
        if new is None:
            digest = hashlib.sha256(self.secret + uid.encode()).digest()
            # 2.25 + a 128-bit integer: a UID that needs no registered root (PS3.5 B.2).
            new = "2.25." + str(int.from_bytes(digest[:16], "big"))
            self.seen[uid] = new
        return new


def action_for(keyword: str, vr: str, *, retain_dates: bool) -> str | None:
    """The profile's action on one attribute: X, Z, D, U, or None (kept)."""
    if vr in TEMPORAL_VRS:
        if retain_dates:
            return None
        return BASIC_PROFILE.get(keyword, "X")
    return BASIC_PROFILE.get(keyword)


def _scrub(dataset, uids: UidMap, retain_dates: bool = False) -> None:
    from pydicom.datadict import keyword_for_tag

    dataset.remove_private_tags()
    for element in list(dataset):
        keyword = keyword_for_tag(element.tag) or ""
        action = action_for(keyword, element.VR, retain_dates=retain_dates)
        if action == "X":
            del dataset[element.tag]
            continue
        if action == "Z":
            element.value = None if element.VR == "SQ" else ""
            continue
        if action == "D":
            element.value = "ANONYMOUS" if element.VR == "PN" else ""
            continue
        if element.VR == "UI" and element.value:
            if element.VM > 1:
                element.value = [uids(v) for v in element.value]
            else:
                element.value = uids(element.value)
        elif element.VR == "SQ":
            for item in element.value:
                _scrub(item, uids, retain_dates)


def deidentify_file(
    source: Path, target: Path, uids: UidMap, pseudonym: str, *, retain_dates: bool = False
) -> None:
    import pydicom
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence
    from pydicom.uid import AllTransferSyntaxes

    ds = pydicom.dcmread(source)
    syntax = ds.file_meta.get("TransferSyntaxUID")
    # Whether pydicom writes a syntax it does not list depends on what plugins were
    # imported before: refuse those, so the answer never depends on import order.
    if syntax is not None and syntax not in AllTransferSyntaxes:
        raise ValueError(f"Transfer Syntax {syntax} cannot be written back here")
    _scrub(ds, uids, retain_dates)
    ds.PatientName = pseudonym
    ds.PatientID = pseudonym
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "DICOM PS3.15 Basic Application Confidentiality Profile"
    codes = [("113100", "Basic Application Confidentiality Profile")]
    if retain_dates:
        codes.append(("113106", "Retain Longitudinal Temporal Information Full Dates Option"))
        ds.LongitudinalTemporalInformationModified = "UNMODIFIED"
    else:
        ds.LongitudinalTemporalInformationModified = "REMOVED"
    items = []
    for value, meaning in codes:
        code = Dataset()
        code.CodeValue = value
        code.CodingSchemeDesignator = "DCM"
        code.CodeMeaning = meaning
        items.append(code)
    ds.DeidentificationMethodCodeSequence = Sequence(items)
    meta = ds.file_meta
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for keyword in ("SourceApplicationEntityTitle", "SendingApplicationEntityTitle"):
        if keyword in meta:
            del meta[keyword]
    ds.preamble = bytes(128)
    ds.save_as(target, enforce_file_format=True)
