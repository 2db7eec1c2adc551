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

    /// @notice Longest tags string.
    uint256 public constant MAX_TAGS = 256;

    /// @notice `datasetId` is already registered.
    error DatasetExists(bytes32 datasetId);
    /// @notice No dataset `datasetId`.
    error UnknownDataset(bytes32 datasetId);
    /// @notice Zero id, zero content id, or tags longer than MAX_TAGS.
    error InvalidDataset();

    /// @notice A dataset was registered.
    event DatasetRegistered(
        bytes32 indexed datasetId,
        address indexed owner,
        bytes32 indexed contentId,
        bytes32 licenseId,
        uint64 sizeBytes,
        string tags
    );

    /// @notice Registers a dataset owned by the caller.
    /// @param datasetId the dataset's id (the engine's 16-byte id, left-aligned).
    /// @param contentId BLAKE3 digest of the dataset's root manifest (`artha://<cid>`).
    /// @param licenseId content id of the licence text (zero if none).
    /// @param sizeBytes total size in bytes.
    /// @param tags comma-separated tags (at most MAX_TAGS bytes).
    function register(bytes32 datasetId, bytes32 contentId, bytes32 licenseId, uint64 sizeBytes, string calldata tags)
        external
    {
        if (datasetId == bytes32(0) || contentId == bytes32(0) || bytes(tags).length > MAX_TAGS) {
            revert InvalidDataset();
        }
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

    /// @notice The `i`th dataset id (registration order).
    function idAt(uint256 i) external view returns (bytes32) {
        return _ids[i];
    }

    /// @notice Up to `limit` dataset ids from position `offset`.
    function ids(uint256 offset, uint256 limit) external view returns (bytes32[] memory page) {
        uint256 total = _ids.length;
        uint256 end = offset >= total ? offset : (total - offset > limit ? offset + limit : total);
        page = new bytes32[](end - offset);
        for (uint256 i = offset; i < end; i++) {
            page[i - offset] = _ids[i];
        }
    }
}
