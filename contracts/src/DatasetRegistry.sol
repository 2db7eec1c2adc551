// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title DatasetRegistry
/// @notice Datasets by content id (the BLAKE3 digest behind `artha://`),
/// with licence, tags and size.
contract DatasetRegistry {
    /// @notice A registered dataset.
    struct Dataset {
        address owner;
        uint64 sizeBytes;
        bytes32 contentId;
        bytes32 licenseId;
        string tags;
    }

    mapping(bytes32 datasetId => Dataset) private _datasets;
    bytes32[] private _ids;

    error DatasetExists(bytes32 datasetId);
    error UnknownDataset(bytes32 datasetId);
    error InvalidDataset();

    event DatasetRegistered(
        bytes32 indexed datasetId,
        address indexed owner,
        bytes32 indexed contentId,
        bytes32 licenseId,
        uint64 sizeBytes,
        string tags
    );

    /// @notice Registers a dataset owned by the caller.
    function register(bytes32 datasetId, bytes32 contentId, bytes32 licenseId, uint64 sizeBytes, string calldata tags)
        external
    {
        if (datasetId == bytes32(0) || contentId == bytes32(0) || bytes(tags).length > 256) revert InvalidDataset();
        if (_datasets[datasetId].owner != address(0)) revert DatasetExists(datasetId);
        _datasets[datasetId] = Dataset(msg.sender, sizeBytes, contentId, licenseId, tags);
        _ids.push(datasetId);
        emit DatasetRegistered(datasetId, msg.sender, contentId, licenseId, sizeBytes, tags);
    }

    /// @notice Whether `datasetId` is registered.
    function exists(bytes32 datasetId) external view returns (bool) {
        return _datasets[datasetId].owner != address(0);
    }

    /// @notice A dataset's record.
    function get(bytes32 datasetId) external view returns (Dataset memory d) {
        d = _datasets[datasetId];
        if (d.owner == address(0)) revert UnknownDataset(datasetId);
    }

    /// @notice Number of datasets.
    function count() external view returns (uint256) {
        return _ids.length;
    }

    /// @notice The `i`th dataset id.
    function idAt(uint256 i) external view returns (bytes32) {
        return _ids[i];
    }
}
